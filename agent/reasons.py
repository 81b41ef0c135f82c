"""Reasons for problems in the agent's YAML files, worded in the current language.

``pydantic_reason`` describes one pydantic error. The error types that the agent's models and
the adapters' settings raise have their own text in ``agent.validation_messages``, which names the
value given and what is allowed. Any other type keeps pydantic's English message.
``checked_identifier`` words the protocol's check of an id.
``yaml_syntax_reason`` describes a syntax error of PyYAML's pure-Python loader. In Polish the
common mistakes get a plain explanation, while English and the rare errors keep PyYAML's detail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time

import yaml
from pydantic_core import ErrorDetails

from agent.validation_messages import MESSAGES
from kooperant.i18n import Language, current_language
from kooperant.protocol import TopicError, check_identifier

# Keys whose values are never echoed in an error message.
_SECRET_KEY_PARTS = ("password", "secret", "token")

Fields = Callable[[ErrorDetails, Language], Mapping[str, object]]


def pydantic_reason(
    detail: ErrorDetails, location: Sequence[str | int], language: Language | None = None
) -> str:
    """Describe one pydantic error; the value given is not shown when a key names a secret."""
    language = language or current_language()
    context = detail.get("ctx", {})
    if detail["type"] in ("value_error", "assertion_error") and "error" in context:
        return str(context["error"])

    given_text = "" if _is_secret(location) else _given_text(detail["input"], language)
    wording = _WORDINGS.get(detail["type"])
    if wording is None:
        message = detail["msg"]
        return message[:1].lower() + message[1:] + given_text
    fields = wording.fields(detail, language)
    return MESSAGES(wording.message_id, language, given=given_text, **fields)


def repeats_item_errors(detail: ErrorDetails) -> bool:
    """Tell whether ``detail`` only restates the errors of a collection's items.

    Pydantic counts only the items that passed validation, so ``days: [pon]`` with a minimum of
    one item gets a "list too short" error next to the error about ``pon``.
    """
    value = detail["input"]
    if detail["type"] != "too_short" or not isinstance(value, list | tuple | dict | set):
        return False
    minimum: int = detail.get("ctx", {}).get("min_length", 0)
    return len(value) >= minimum


def yaml_syntax_reason(error: yaml.MarkedYAMLError, language: Language | None = None) -> str:
    """Describe a PyYAML syntax error; ``start_line`` is the line where the broken part began."""
    language = language or current_language()
    problem = error.problem or ""
    context = error.context or ""
    detail = ", ".join(part for part in (error.context, error.problem) if part)
    mark = error.context_mark or error.problem_mark
    start_line = mark.line + 1 if mark is not None else "?"

    for rule in _YAML_RULES:
        problem_match = rule.problem.fullmatch(problem)
        context_match = rule.context.fullmatch(context) if rule.context else None
        if problem_match is None or (rule.context is not None and context_match is None):
            continue
        fields = {**problem_match.groupdict(), "detail": detail, "start_line": start_line}
        if context_match is not None:
            fields.update(context_match.groupdict())
        return MESSAGES(rule.message_id, language, **fields)
    return MESSAGES("yaml.invalid", language, detail=detail)


def checked_identifier(value: str, what: str) -> str:
    """Return ``value`` if it is a valid id; otherwise raise ``ValueError`` in the current language.

    ``what`` is ``adapter``, ``cluster``, ``group``, ``member`` or ``resource``. The protocol's
    ``TopicError``, always English, is chained as the cause.
    """
    try:
        return check_identifier(value, what)
    except TopicError as error:
        noun = MESSAGES(f"id.{what}")
        raise ValueError(MESSAGES("id.invalid", what=noun, value=value)) from error


def count_text(count: int, noun_id: str, language: Language) -> str:
    """Return ``count`` with the noun's plural form, e.g. ``"3 elementy"`` or ``"3 items"``."""
    return plural_text(count, MESSAGES(noun_id, language), language)


def plural_text(count: int, forms: str, language: Language) -> str:
    """Return ``count`` and the form of ``forms`` that goes with it, e.g. ``"5 dni"``.

    ``forms`` lists the forms for 1, for 2-4 (Polish only) and for other counts, split by "|",
    e.g. ``"dnia|dni|dni"`` or ``"day|days"``. In Polish the middle form goes with the counts
    ending in 2, 3 or 4 except 12, 13 and 14.
    """
    parts = forms.split("|")
    if language == "pl":
        if count == 1:
            index = 0
        elif count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
            index = 1
        else:
            index = 2
    else:
        index = 0 if count == 1 else 1
    return f"{count} {parts[index]}"


def _given_text(value: object, language: Language) -> str:
    if isinstance(value, bool):
        value_text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        value_text = repr(value)
    elif isinstance(value, date | time):
        value_text = value.isoformat()
    elif value is None:
        return MESSAGES("given.empty", language)
    elif isinstance(value, list | tuple):
        return MESSAGES("given.list", language)
    elif isinstance(value, dict):
        return MESSAGES("given.mapping", language)
    else:
        return ""
    return MESSAGES("given", language, value=value_text)


def _is_secret(location: Sequence[str | int]) -> bool:
    return any(
        isinstance(part, str) and any(secret in part.lower() for secret in _SECRET_KEY_PARTS)
        for part in location
    )


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _alternatives(expected: str, language: Language) -> str:
    """Reword pydantic's ``'a', 'b' or 'c'`` as the language lists alternatives."""
    rest, separator, last = expected.rpartition(" or ")
    if not separator:
        return expected
    return MESSAGES("alternatives", language, rest=rest, last=last)


def _no_fields(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    return {}


def _expected(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    return {"expected": _alternatives(str(detail.get("ctx", {})["expected"]), language)}


def _url_schemes(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    return {"expected": _alternatives(str(detail.get("ctx", {})["expected_schemes"]), language)}


def _limit(key: str) -> Fields:
    def fields(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
        return {"limit": _number(detail.get("ctx", {})[key])}

    return fields


def _parse_detail(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    error = detail.get("ctx", {}).get("error")
    return {"detail": f" ({error})" if error else ""}


def _pattern(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    return {"pattern": detail.get("ctx", {})["pattern"]}


def _collection_size(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    context = detail.get("ctx", {})
    is_mapping = context.get("field_type") == "Dictionary"
    noun = "noun.key" if is_mapping else "noun.item"
    actual = context.get("actual_length")
    return {
        "container": MESSAGES("container.mapping" if is_mapping else "container.list", language),
        "minimum": count_text(context.get("min_length", 0), noun, language),
        "maximum": count_text(context.get("max_length", 0), noun, language),
        "size": "" if actual is None else MESSAGES("size", language, count=actual),
    }


def _string_size(detail: ErrorDetails, language: Language) -> Mapping[str, object]:
    context = detail.get("ctx", {})
    value = detail["input"]
    length = len(value) if isinstance(value, str) else 0
    return {
        "minimum": count_text(context.get("min_length", 0), "noun.character", language),
        "maximum": count_text(context.get("max_length", 0), "noun.character", language),
        "length": count_text(length, "noun.character", language),
    }


@dataclass(frozen=True, slots=True)
class _Wording:
    """The message of one pydantic error type and the function that fills its fields."""

    message_id: str
    fields: Fields = _no_fields


_WORDINGS: dict[str, _Wording] = {
    "missing": _Wording("value.missing"),
    "extra_forbidden": _Wording("value.unknown_key"),
    "literal_error": _Wording("value.one_of", _expected),
    "enum": _Wording("value.one_of", _expected),
    "string_type": _Wording("value.string"),
    "int_type": _Wording("value.integer"),
    "int_parsing": _Wording("value.integer"),
    "int_from_float": _Wording("value.integer"),
    "float_type": _Wording("value.number"),
    "float_parsing": _Wording("value.number"),
    "finite_number": _Wording("value.finite_number"),
    "bool_type": _Wording("value.boolean"),
    "bool_parsing": _Wording("value.boolean"),
    "greater_than": _Wording("value.greater_than", _limit("gt")),
    "greater_than_equal": _Wording("value.greater_than_equal", _limit("ge")),
    "less_than": _Wording("value.less_than", _limit("lt")),
    "less_than_equal": _Wording("value.less_than_equal", _limit("le")),
    "too_short": _Wording("value.too_short", _collection_size),
    "too_long": _Wording("value.too_long", _collection_size),
    "string_too_short": _Wording("value.string_too_short", _string_size),
    "string_too_long": _Wording("value.string_too_long", _string_size),
    "string_pattern_mismatch": _Wording("value.pattern", _pattern),
    "url_type": _Wording("value.url", _parse_detail),
    "url_parsing": _Wording("value.url", _parse_detail),
    "url_syntax_violation": _Wording("value.url", _parse_detail),
    "url_scheme": _Wording("value.url_scheme", _url_schemes),
    "url_too_long": _Wording("value.url_too_long", _string_size),
    "date_type": _Wording("value.date", _parse_detail),
    "date_parsing": _Wording("value.date", _parse_detail),
    "date_from_datetime_parsing": _Wording("value.date", _parse_detail),
    "date_from_datetime_inexact": _Wording("value.date", _parse_detail),
    "datetime_type": _Wording("value.datetime", _parse_detail),
    "datetime_parsing": _Wording("value.datetime", _parse_detail),
    "datetime_from_date_parsing": _Wording("value.datetime", _parse_detail),
    "datetime_object_invalid": _Wording("value.datetime", _parse_detail),
    "timezone_aware": _Wording("value.timezone_aware"),
    "time_type": _Wording("value.time", _parse_detail),
    "time_parsing": _Wording("value.time", _parse_detail),
    "dict_type": _Wording("value.mapping"),
    "model_type": _Wording("value.mapping"),
    "model_attributes_type": _Wording("value.mapping"),
    "list_type": _Wording("value.list"),
    "tuple_type": _Wording("value.list"),
    "set_type": _Wording("value.list"),
    "frozen_set_type": _Wording("value.list"),
    "path_type": _Wording("value.path"),
}


@dataclass(frozen=True, slots=True)
class _YamlRule:
    """A PyYAML error, matched by its problem text and optionally its context text."""

    message_id: str
    problem: re.Pattern[str]
    context: re.Pattern[str] | None = None


# The texts are those of PyYAML 6's scanner, parser and composer; libyaml's differ.
_YAML_RULES = (
    _YamlRule("yaml.indentation", re.compile(r"expected <block end>, but found .*")),
    _YamlRule("yaml.colon", re.compile(r"mapping values are not allowed here")),
    _YamlRule("yaml.missing_colon", re.compile(r"could not find expected ':'")),
    _YamlRule("yaml.tab", re.compile(r"found character '\\t' that cannot start any token")),
    _YamlRule(
        "yaml.bad_start",
        re.compile(r"found character (?P<character>.+) that cannot start any token"),
    ),
    _YamlRule("yaml.unclosed_list", re.compile(r"expected ',' or '\]', but got .*")),
    _YamlRule("yaml.unclosed_mapping", re.compile(r"expected ',' or '\}', but got .*")),
    _YamlRule(
        "yaml.unclosed_quote",
        re.compile(r"found unexpected end of stream"),
        re.compile(r"while scanning a quoted scalar"),
    ),
    _YamlRule("yaml.escape", re.compile(r"found unknown escape character '(?P<character>.+)'")),
    _YamlRule("yaml.undefined_alias", re.compile(r"found undefined alias '(?P<name>.+)'")),
    _YamlRule(
        "yaml.duplicate_anchor",
        re.compile(r"second occurrence"),
        re.compile(r"found duplicate anchor '(?P<name>.+)'; first occurrence"),
    ),
    _YamlRule("yaml.many_documents", re.compile(r"but found another document")),
)
