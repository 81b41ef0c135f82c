"""JSON Schema checks of messages: jsonschema-rs decides, jsonschema explains a rejection.

The Python ``jsonschema`` package writes the error messages that the aggregator logs and stores,
but it takes about 0.5 ms to check a valid 600-byte offer, mostly in resolving ``$ref``. The Rust
validator of ``jsonschema-rs`` checks it in a few microseconds. ``SchemaCheck`` runs jsonschema-rs
first and jsonschema only when jsonschema-rs finds the message invalid or cannot read it, so every
error is jsonschema's.

A message is therefore accepted exactly when jsonschema accepts it, provided that jsonschema-rs
never accepts what jsonschema rejects. ``rust_schema`` makes sure of that. It accepts only the
keywords in ``SAME_KEYWORDS``, which both libraries implement alike for draft 2020-12 (no
``format``, whose assertion depends on the draft and on a format checker). It also rewrites every
``pattern``, written for Python's ``re`` as jsonschema uses it (``re.search``), into a pattern
that Rust's ``regex`` crate matches on the same strings:

- ``\\s`` becomes the characters that Python's ``\\s`` matches. The ``\\s`` of jsonschema-rs 0.60
  differs, for example on U+001C to U+001F, U+0085 and U+FEFF.
- ``\\d`` becomes ``[0-9]``. Python's ``\\d`` also matches other Unicode decimal digits, such as
  Arabic-Indic ones. jsonschema-rs rejects those, so such a message is left to jsonschema.

A ``$`` matches only at the end of the string, as in the ECMA-262 regular expressions that JSON
Schema specifies and in Rust's ``regex``. Python's ``$`` also matches before a final line feed, so
``ProtocolValidator`` reads each ``$`` of a pattern as ``\\Z``. Without that, an id such as
``"acme\\n"`` would pass the schema and fail later, in the checks of topic ids.

A message with a lone surrogate in a string (JSON allows ``"\\ud800"``) may also be left to
jsonschema, because jsonschema-rs needs UTF-8 for some keywords.

Another escape, ``.`` outside a class, a group flag or a nested class raises ``ValueError``, so a
schema edit that could make the two differ fails when the schema is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Keywords whose value is a schema, a list of schemas or a map of names to schemas.
_SCHEMA_KEYWORDS = frozenset({"items", "additionalProperties", "not", "if", "then", "else"})
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf"})
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "$defs"})
SAME_KEYWORDS = (
    _SCHEMA_KEYWORDS
    | _SCHEMA_LIST_KEYWORDS
    | _SCHEMA_MAP_KEYWORDS
    | frozenset(
        {
            "$schema",
            "$id",
            "$ref",
            "$comment",
            "title",
            "description",
            "type",
            "enum",
            "const",
            "required",
            "dependentRequired",
            "pattern",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "uniqueItems",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
        }
    )
)
"""Draft 2020-12 keywords that jsonschema and jsonschema-rs evaluate alike (``pattern`` once
rewritten by ``rust_pattern``)."""

# Characters that keep their literal meaning when escaped, in Python and in Rust.
_ESCAPED_LITERALS = frozenset(".+*?()[]{}|^$\\/-")
# Two-character operators that Rust's regex crate reads as set operations inside a class.
_CLASS_OPERATORS = ("&&", "--", "~~")


def _pattern(
    validator: Validator, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and not _python_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


ProtocolValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)
"""Draft 2020-12 validator of jsonschema whose ``pattern`` reads ``$`` as the end of the string."""


@cache
def _python_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(python_pattern(pattern))


def python_pattern(pattern: str) -> str:
    """Return ``pattern`` with each ``$`` outside a character class replaced by ``\\Z``.

    Python's ``$`` also matches before a final line feed, while ``\\Z`` matches only at the end of
    the string, as ``$`` does in the ECMA-262 patterns of JSON Schema.
    """
    parts = []
    in_class = False
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "\\":
            parts.append(pattern[index : index + 2])
            index += 2
            continue

        if in_class:
            in_class = character != "]"
        elif character == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal in Python, not the end of the class.
            start = index + (2 if pattern[index + 1 : index + 2] == "^" else 1)
            if pattern[start : start + 1] == "]":
                start += 1
            parts.append(pattern[index:start])
            index = start
            continue
        elif character == "$":
            character = r"\Z"
        parts.append(character)
        index += 1
    return "".join(parts)


class SchemaCheck:
    """A JSON Schema compiled by jsonschema-rs for speed and by jsonschema for error messages."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.python = ProtocolValidator(schema)
        self._rust = jsonschema_rs.Draft202012Validator(
            rust_schema(schema),
            validate_formats=False,
            # The regex crate matches in linear time, so no pattern has a backtracking limit.
            pattern_options=jsonschema_rs.RegexOptions(),
            offline=True,
        )

    def rust_accepts(self, data: object) -> bool:
        """Return whether jsonschema-rs finds ``data`` valid; False when it cannot read it."""
        try:
            return self._rust.is_valid(data)
        except ValueError:
            # A string with a lone surrogate (JSON allows "\ud800") has no UTF-8 form, which
            # jsonschema-rs needs for some keywords. UnicodeEncodeError is a ValueError.
            return False

    def errors(self, data: Any) -> list[ValidationError]:
        """Return the schema violations of ``data`` sorted by their path, or [] if it is valid."""
        if self.rust_accepts(data):
            return []
        return sorted(self.python.iter_errors(data), key=lambda error: list(error.absolute_path))


def rust_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``schema`` for jsonschema-rs with each ``pattern`` rewritten.

    Raises ``ValueError`` naming the place of a keyword outside ``SAME_KEYWORDS``, of a pattern
    that ``rust_pattern`` cannot rewrite, or of a ``$schema`` other than draft 2020-12.
    """
    declared = schema.get("$schema")
    if declared != DRAFT_2020_12:
        raise ValueError(f"schema declares $schema {declared!r}; expected {DRAFT_2020_12!r}")
    rewritten: dict[str, Any] = _rewritten(schema, "#")
    return rewritten


def _rewritten(schema: object, where: str) -> Any:
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, Mapping):
        raise ValueError(f"schema at {where} is {type(schema).__name__}, not an object or boolean")

    copy: dict[str, Any] = {}
    for keyword, value in schema.items():
        place = f"{where}/{keyword}"
        if keyword not in SAME_KEYWORDS:
            raise ValueError(
                f"keyword {keyword!r} at {place} is not known to behave the same in jsonschema "
                "and jsonschema-rs; check both and add it to SAME_KEYWORDS"
            )
        copy[keyword] = _rewritten_value(keyword, value, place)
    return copy


def _rewritten_value(keyword: str, value: Any, place: str) -> Any:
    if keyword in _SCHEMA_KEYWORDS:
        return _rewritten(value, place)
    if keyword in _SCHEMA_LIST_KEYWORDS:
        return [_rewritten(item, f"{place}/{index}") for index, item in enumerate(value)]
    if keyword in _SCHEMA_MAP_KEYWORDS:
        return {name: _rewritten(item, f"{place}/{name}") for name, item in value.items()}
    if keyword == "pattern":
        try:
            return rust_pattern(value)
        except ValueError as error:
            raise ValueError(f"pattern at {place}: {error}") from None
    return value


def rust_pattern(pattern: str) -> str:
    """Return a Rust ``regex`` pattern that finds a match in the strings Python's ``pattern`` does.

    The result matches a subset of what ``re.search(pattern, ...)`` matches: the same strings,
    except those where only a non-ASCII decimal digit matched a ``\\d``. Raises ``ValueError``
    for syntax outside the subset this function can translate.
    """
    return "".join(_rust_pattern_parts(pattern))


def _rust_pattern_parts(pattern: str) -> Iterator[str]:
    in_class = False
    index = 0
    while index < len(pattern):
        character = pattern[index]
        following = pattern[index + 1] if index + 1 < len(pattern) else ""
        if character == "\\":
            yield _escape(following, in_class, pattern)
            index += 2
            continue

        if in_class:
            if character == "[" or pattern.startswith(_CLASS_OPERATORS, index):
                raise ValueError(
                    f"{pattern!r} has {pattern[index : index + 2]!r} in a character class, "
                    "which Rust reads as a nested class or a set operation; escape it"
                )
            in_class = character != "]"
            yield character
            index += 1
            continue

        if character == "[":
            in_class = True
            start = "[^" if following == "^" else "["
            index += len(start)
            if pattern[index : index + 1] == "]":
                raise ValueError(f"{pattern!r} has ']' first in a character class; escape it")
            yield start
            continue
        if character == ".":
            raise ValueError(
                f"{pattern!r} has '.' outside a character class, which may match different line "
                "breaks in Python and jsonschema-rs; use a character class"
            )
        elif character == "(" and following == "?":
            raise ValueError(f"{pattern!r} has a group with flags or a lookaround")
        else:
            yield character
        index += 1

    if in_class:
        raise ValueError(f"{pattern!r} has a character class without its closing ']'")


def _escape(escaped: str, in_class: bool, pattern: str) -> str:
    if escaped == "d":
        return "0-9" if in_class else "[0-9]"
    if escaped == "s":
        characters = python_whitespace_class()
        return characters if in_class else f"[{characters}]"
    if escaped in _ESCAPED_LITERALS:
        return "\\" + escaped
    raise ValueError(
        f"{pattern!r} has the escape \\{escaped}, whose meaning may differ between Python and "
        "Rust; only \\d, \\s and escaped punctuation are translated"
    )


@cache
def python_whitespace_class() -> str:
    """Return the characters that ``\\s`` matches in Python ``re``, as character class content.

    The characters appear as themselves and consecutive ones as ranges, for example
    ``\\t-\\r`` for tab to carriage return.
    """
    # NOTE: only the Basic Multilingual Plane is scanned, because Python's \s matches no
    # character above U+FFFF. tests/protocol/test_schema_check.py checks the whole range.
    plane = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
    parts = []
    for match in re.finditer(r"\s+", plane):
        first, last = match.group()[0], match.group()[-1]
        parts.append(first if first == last else f"{first}-{last}")
    return "".join(parts)
