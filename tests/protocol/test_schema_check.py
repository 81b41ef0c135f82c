"""SchemaCheck: jsonschema-rs must never accept what jsonschema rejects.

The differential tests give the same data to both validators of a ``SchemaCheck``: hand-picked
edge cases, and valid messages that hypothesis mutates (strings with Unicode digits, trailing
line breaks, control characters, huge numbers, wrong types, missing and extra keys). A
rejection by jsonschema-rs of what jsonschema accepts is allowed only in the cases that the module
docstring of ``kooperant.protocol.schema_check`` lists: a non-ASCII decimal digit, or a lone
surrogate that jsonschema-rs cannot always read.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kooperant.protocol import (
    OfferValidationError,
    answer_json_schema,
    offer_json_schema,
    parse_answer,
    parse_offer,
    parse_request,
    parse_status,
    parse_withdrawal,
    request_json_schema,
    status_json_schema,
    withdrawal_json_schema,
)
from kooperant.protocol.schema_check import (
    DRAFT_2020_12,
    ProtocolValidator,
    SchemaCheck,
    python_pattern,
    python_whitespace_class,
    rust_pattern,
    rust_schema,
)

JsonObject = dict[str, Any]

SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "offer": offer_json_schema,
    "withdrawal": withdrawal_json_schema,
    "status": status_json_schema,
    "answer": answer_json_schema,
    "request": request_json_schema,
}
CHECKS = {name: SchemaCheck(schema()) for name, schema in SCHEMAS.items()}
PARSERS: dict[str, Callable[[bytes], object]] = {
    "offer": parse_offer,
    "withdrawal": parse_withdrawal,
    "status": parse_status,
    "answer": parse_answer,
    "request": parse_request,
}

REQUEST_ID = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
ENVELOPE = {"message_id": "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f", "seq": 1796387400000000}
T0 = "2026-12-07T06:00:00+00:00"
T1 = "2026-12-07T10:00:00+01:00"

MACHINE_OFFER: JsonObject = {
    "schema": "kooperant.offer/1.2",
    "cluster": "pomorskie-metal",
    "member": "acme",
    "resource": "cnc-5ax-01",
    "kind": "machine",
    "generated_at": T0,
    "name": "DMU 50",
    "capabilities": ["5-axis-milling", "turning"],
    "state": "NotExecuting",
    "state_since": "2026-12-07T05:00:00Z",
    "horizon": {"start": T0, "end": "2026-12-21T06:00:00.250+00:00"},
    "free_hours": 6.0,
    "free_intervals": [{"start": T0, "end": T1}, {"start": T1, "end": "2026-12-08T08:00+01:00"}],
    "audience": ["beta-tools", "gamma.01"],
    "expires_at": "2027-01-01T00:00:00-05:30",
    "accepts_requests": True,
    **ENVELOPE,
}
SUPPLIES_OFFER: JsonObject = {
    "schema": "kooperant.offer/1.1",
    "cluster": "pomorskie-metal",
    "member": "acme",
    "resource": "sheet-steel",
    "kind": "supplies",
    "generated_at": T0,
    "amounts": [
        {"quantity": "sheets", "value": 120, "unit": "pcs", "label": "S235 2 mm"},
        {"quantity": "pallets", "band": {"min": 10, "max": None}, "unit": "pallets"},
    ],
    "free_hours_band": {"min": 0, "max": 40.5},
    "price": {"value": 42.5, "currency": "PLN", "unit": "sheet"},
    "suppliers": ["Huta Katowice"],
    "customers": ["Stocznia Gdańsk", "ACME"],
}
WITHDRAWAL: JsonObject = {
    "schema": "kooperant.withdrawal/1.1",
    "cluster": "pomorskie-metal",
    "member": "acme",
    "resource": "cnc-5ax-01",
    "withdrawn_at": T1,
    "reason": "withdrawn",
    "delete_history": False,
    **ENVELOPE,
}
ONLINE_STATUS: JsonObject = {
    "schema": "kooperant.status/1.0",
    "cluster": "pomorskie-metal",
    "member": "acme",
    "state": "online",
    "connected_at": "2026-12-07T06:00:00.123456+00:00",
    "agent_version": "0.9.0",
}
OFFLINE_STATUS: JsonObject = {
    **ONLINE_STATUS,
    "state": "offline",
    "reason": "connection_lost",
}
DECLINED_ANSWER: JsonObject = {
    "schema": "kooperant.answer/1.0",
    **ENVELOPE,
    "request_id": REQUEST_ID,
    "cluster": "pomorskie-metal",
    "member": "acme",
    "resource": "cnc-5ax-01",
    "state": "declined",
    "decided_at": "2026-12-04T12:30:00Z",
    "reason": "Maszyna zajęta do końca miesiąca.",
}
SLOT_REQUEST: JsonObject = {
    "schema": "kooperant.request/1.0",
    "request_id": REQUEST_ID,
    "cluster": "pomorskie-metal",
    "member": "acme",
    "resource": "cnc-5ax-01",
    "requester": "beta-tools",
    "created_at": "2026-12-04T10:00:00+01:00",
    "expires_at": "2026-12-06T10:00:00Z",
    "message": "Potrzebujemy frezowania 5-osiowego,\nok. 40 detali.",
    "contact": {
        "name": "Anna Nowak",
        "email": "anna.nowak@beta.example",
        "phone": "+48 (58) 123-45.67",
    },
    "slot": {"start": "2026-12-08T06:00:00Z", "end": "2026-12-08T14:00:00Z"},
}
AMOUNT_REQUEST: JsonObject = {
    **{key: value for key, value in SLOT_REQUEST.items() if key != "slot"},
    **ENVELOPE,
    "contact": {"name": "Anna Nowak", "phone": "+48 58 123 45 67"},
    "amount": {"quantity": "person_days", "value": 3.5, "unit": "days", "label": "python"},
}
VALID_MESSAGES: list[tuple[str, JsonObject]] = [
    ("offer", MACHINE_OFFER),
    ("offer", SUPPLIES_OFFER),
    ("withdrawal", WITHDRAWAL),
    ("status", ONLINE_STATUS),
    ("status", OFFLINE_STATUS),
    ("answer", DECLINED_ANSWER),
    ("request", SLOT_REQUEST),
    ("request", AMOUNT_REQUEST),
]


def schema_patterns() -> list[str]:
    found: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.add(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    for schema in SCHEMAS.values():
        collect(schema())
    return sorted(found)


def property_names() -> list[str]:
    return sorted({key for schema in SCHEMAS.values() for key in schema()["properties"]})


PATTERNS = schema_patterns()


def strings_in(data: object) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from strings_in(value)
    elif isinstance(data, list):
        for item in data:
            yield from strings_in(item)


def outside_rust_subset(data: object) -> bool:
    """Whether ``data`` has a string that jsonschema-rs may reject although jsonschema accepts it.

    These are a decimal digit other than 0 to 9, which Python's \\d matches, and a lone
    surrogate, which jsonschema-rs cannot always read.
    """
    return any(
        (character.isdecimal() and not "0" <= character <= "9") or "\ud800" <= character <= "\udfff"
        for text in strings_in(data)
        for character in text
    )


def assert_same_verdict(check: SchemaCheck, data: object) -> None:
    python = check.python.is_valid(data)
    rust = check.rust_accepts(data)
    if rust:
        assert python, f"jsonschema-rs accepted what jsonschema rejects: {data!r}"
    if python:
        assert rust or outside_rust_subset(data), f"jsonschema-rs rejected {data!r}"


# Characters where Python's re and Rust's regex, or JSON Schema's number rules, may differ.
TRICKY_CHARACTERS = (
    "0",
    "9",
    "a",
    "Z",
    "T",
    "-",
    "+",
    ":",
    ".",
    "@",
    "_",
    "/",
    "(",
    " ",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x00",
    "\x1c",
    "\x1f",
    "\x7f",
    "\x85",
    "\xa0",
    "\u1680",
    "\u180e",
    "\u2000",
    "\u200b",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u3000",
    "\ufeff",
    "\u0663",  # ARABIC-INDIC DIGIT THREE
    "\u06f5",  # EXTENDED ARABIC-INDIC DIGIT FIVE
    "\u0e53",  # THAI DIGIT THREE
    "\uff11",  # FULLWIDTH DIGIT ONE
    "\U0001d7ce",  # MATHEMATICAL BOLD DIGIT ZERO
    "\U00011f50",  # KAWI DIGIT ZERO, new in Unicode 15
    "\u00b2",  # SUPERSCRIPT TWO: a digit, but not a decimal digit
    "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE
    "\u212a",  # KELVIN SIGN, which case-folds to K
    "ą",
    "😀",
    "\ud800",
)
LINE_ENDINGS = ("\n", "\n\n", "\r\n", "\r", "\x85", "\u2028")
TRICKY_NUMBERS = (
    0,
    1,
    -1,
    2**53 - 1,
    2**53,
    2**63,
    2**64,
    2**64 + 1,
    10**300,
    -(10**300),
    0.0,
    -0.0,
    1.0,
    1.5,
    5e-324,
    -5e-324,
    1e308,
    -1e308,
    9007199254740991.0,
    9007199254740992.0,
    True,
    False,
)

tricky_text = st.text(alphabet=st.sampled_from(TRICKY_CHARACTERS), max_size=12)
pattern_text = st.sampled_from(PATTERNS).flatmap(lambda pattern: st.from_regex(pattern))
texts = st.one_of(
    tricky_text,
    pattern_text,
    st.tuples(pattern_text, st.sampled_from(LINE_ENDINGS)).map("".join),
    st.tuples(pattern_text, tricky_text).map("".join),
    st.text(max_size=20),
)
numbers = st.one_of(
    st.sampled_from(TRICKY_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    st.one_of(st.none(), numbers, texts),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(property_names()), texts), children, max_size=3),
    ),
    max_leaves=6,
)


def places(data: object) -> list[tuple[dict[str, Any] | list[Any], Any]]:
    """Return every (container, key or index) inside ``data``, nested ones included."""
    found: list[tuple[dict[str, Any] | list[Any], Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((data, key))
            found.extend(places(value))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((data, index))
            found.extend(places(value))
    return found


@st.composite
def mutated(draw: st.DrawFn, message: JsonObject) -> JsonObject:
    """Return a copy of ``message`` with one to three values replaced, removed, added or edited.

    A string is edited more often than replaced, because a character of a valid string swapped
    for another one finds most differences between Python's and Rust's regular expressions.
    """
    data = copy.deepcopy(message)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        found = places(data)
        if not found:
            break
        container, key = draw(st.sampled_from(found))
        if isinstance(container[key], str):
            actions = ["replace", "remove", "append", "pattern", "substitute", "substitute"]
        else:
            actions = ["replace", "remove", "add", "pattern"]
        action = draw(st.sampled_from(actions))
        if action == "substitute" and container[key]:
            text = container[key]
            index = draw(st.integers(min_value=0, max_value=len(text) - 1))
            container[key] = (
                text[:index] + draw(st.sampled_from(TRICKY_CHARACTERS)) + text[index + 1 :]
            )
        elif action == "replace":
            container[key] = draw(json_values)
        elif action == "remove":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            name = draw(st.one_of(st.sampled_from(property_names()), texts))
            container[name] = draw(json_values)
        elif action == "append" and isinstance(container[key], str):
            container[key] += draw(st.one_of(st.sampled_from(LINE_ENDINGS), tricky_text))
        elif action == "pattern":
            container[key] = draw(pattern_text)
    return data


@pytest.mark.parametrize(("name", "message"), VALID_MESSAGES)
def test_rust_accepts_valid_messages(name: str, message: JsonObject) -> None:
    check = CHECKS[name]

    assert check.python.is_valid(message)
    assert check.rust_accepts(message)


@pytest.mark.parametrize(("name", "message"), VALID_MESSAGES)
def test_valid_message_skips_python_validator(name: str, message: JsonObject) -> None:
    check = SchemaCheck(SCHEMAS[name]())
    check.python = mock.Mock(spec=["iter_errors"])
    check.python.iter_errors.side_effect = AssertionError("jsonschema was called")

    assert check.errors(message) == []


@pytest.mark.parametrize(("name", "message"), VALID_MESSAGES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_messages_same_verdict(name: str, message: JsonObject, data: st.DataObject) -> None:
    assert_same_verdict(CHECKS[name], data.draw(mutated(message)))


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_any_json_value_same_verdict(value: object) -> None:
    for check in CHECKS.values():
        assert_same_verdict(check, value)


def regex_sensitive_characters() -> list[str]:
    """Return the characters on which Python's re and Rust's regex are most likely to differ.

    They are the first 768 code points, every character that Python's \\s or \\d matches, every
    format character, and decimal digits that Unicode 15 and 16 added after Python 3.11's
    Unicode 14.
    """
    below_surrogates = "".join(map(chr, range(0xD800)))
    above_surrogates = "".join(map(chr, range(0xE000, 0x110000)))
    every_character = below_surrogates + above_surrogates
    found = set(map(chr, range(0x300)))
    found |= set("".join(re.findall(r"[\s\d]+", every_character)))
    found |= {character for character in every_character if unicodedata.category(character) == "Cf"}
    newer_digits = (0x11F50, 0x1E4F0, 0x10D40, 0x1CCF0)  # Kawi, Nag Mundari, Garay, outlined
    found |= {chr(first + offset) for first in newer_digits for offset in range(10)}
    found |= {chr(0xD800), chr(0xDFFF), "\u212a", "😀"}
    return sorted(found)


def valid_strings(pattern: str) -> list[str]:
    """Return the two longest strings of ``VALID_MESSAGES`` that match ``pattern``."""
    found = {
        text
        for _, message in VALID_MESSAGES
        for text in strings_in(message)
        if re.search(pattern, text)
    }
    return sorted(found, key=lambda text: (len(text), text))[-2:]


def edits(text: str, characters: list[str]) -> Iterator[str]:
    """Yield ``text`` with one of ``characters`` put in place of, or before, a character."""
    for index in sorted({0, len(text) // 2, len(text) - 1, len(text)}):
        for character in characters:
            yield text[:index] + character + text[index:]
            if index < len(text):
                yield text[:index] + character + text[index + 1 :]
    for ending in LINE_ENDINGS:
        yield text + ending


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_edits_same_verdict(pattern: str) -> None:
    check = SchemaCheck({"$schema": DRAFT_2020_12, "type": "string", "pattern": pattern})
    characters = regex_sensitive_characters()
    seeds = valid_strings(pattern)
    assert seeds, f"no string of VALID_MESSAGES matches {pattern!r}"

    for seed in seeds:
        for text in edits(seed, characters):
            python = check.python.is_valid(text)
            rust = check.rust_accepts(text)
            if rust:
                assert python, f"jsonschema-rs accepted {text!r} for {pattern!r}"
            if python:
                assert rust or outside_rust_subset(text), f"jsonschema-rs rejected {text!r}"


def with_value(message: JsonObject, path: tuple[str, ...], value: object) -> JsonObject:
    data = copy.deepcopy(message)
    container = data
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = value
    return data


ARABIC_DIGITS_TIME = "\u0662\u0660\u0662\u0666-12-07T06:00:00+00:00"
KAWI_DIGITS_TIME = "\U00011f52\U00011f50\U00011f52\U00011f56-12-07T06:00:00+00:00"

# (message, path, value, jsonschema's verdict, jsonschema-rs's verdict)
EDGE_CASES: list[tuple[str, JsonObject, tuple[str, ...], object, bool, bool]] = [
    ("offer", MACHINE_OFFER, ("cluster",), "acme\n", False, False),
    ("offer", MACHINE_OFFER, ("cluster",), "acme\n\n", False, False),
    ("offer", MACHINE_OFFER, ("cluster",), "acme\r", False, False),
    ("offer", MACHINE_OFFER, ("cluster",), "acme\u2028", False, False),
    ("offer", MACHINE_OFFER, ("cluster",), "\u212acme", False, False),
    ("offer", MACHINE_OFFER, ("generated_at",), T0 + "\n", False, False),
    ("offer", MACHINE_OFFER, ("generated_at",), ARABIC_DIGITS_TIME, True, False),
    ("offer", MACHINE_OFFER, ("generated_at",), KAWI_DIGITS_TIME, False, False),
    ("offer", MACHINE_OFFER, ("generated_at",), "2026-12-07T06:00:00+00:00 ", False, False),
    ("offer", MACHINE_OFFER, ("name",), "\ud800", True, True),
    ("offer", MACHINE_OFFER, ("cluster",), "a\ud800", False, False),
    ("offer", MACHINE_OFFER, ("capabilities",), ["\ud800", "\udc00"], True, False),
    ("offer", MACHINE_OFFER, ("name",), "😀" * 200, True, True),
    ("offer", MACHINE_OFFER, ("name",), "😀" * 201, False, False),
    ("offer", MACHINE_OFFER, ("free_hours",), 10**300, True, True),
    ("offer", MACHINE_OFFER, ("free_hours",), -0.0, True, True),
    ("offer", MACHINE_OFFER, ("free_hours",), -5e-324, False, False),
    ("offer", MACHINE_OFFER, ("free_hours",), True, False, False),
    ("offer", MACHINE_OFFER, ("seq",), 2**53 - 1, True, True),
    ("offer", MACHINE_OFFER, ("seq",), 2**53, False, False),
    ("offer", MACHINE_OFFER, ("seq",), 2**64 + 1, False, False),
    ("offer", MACHINE_OFFER, ("seq",), 9007199254740991.0, True, True),
    ("offer", MACHINE_OFFER, ("seq",), 1.5, False, False),
    ("offer", MACHINE_OFFER, ("seq",), True, False, False),
    ("offer", MACHINE_OFFER, ("capabilities",), ["a", "a"], False, False),
    ("offer", MACHINE_OFFER, ("audience",), [], False, False),
    ("offer", MACHINE_OFFER, ("accepts_requests",), 0, False, False),
    ("offer", SUPPLIES_OFFER, ("price", "currency"), "PLN\n", False, False),
    ("offer", SUPPLIES_OFFER, ("price", "currency"), "pln", False, False),
    ("offer", SUPPLIES_OFFER, ("free_hours_band", "max"), None, True, True),
    ("status", ONLINE_STATUS, ("reason",), "stopped", False, False),
    ("request", SLOT_REQUEST, ("contact", "email"), "a\x1cb@beta.example", False, False),
    ("request", SLOT_REQUEST, ("contact", "email"), "a\x85b@beta.example", False, False),
    ("request", SLOT_REQUEST, ("contact", "email"), "a\ufeffb@beta.example", True, True),
    ("request", SLOT_REQUEST, ("contact", "email"), "a\u200bb@beta.example", True, True),
    ("request", SLOT_REQUEST, ("contact", "email"), "a\u180eb@beta.example", True, True),
    ("request", SLOT_REQUEST, ("contact", "email"), "a\u3000b@beta.example", False, False),
    ("request", SLOT_REQUEST, ("contact", "email"), "a@beta.example\n", False, False),
    ("request", SLOT_REQUEST, ("created_at",), ARABIC_DIGITS_TIME, True, False),
    ("request", AMOUNT_REQUEST, ("amount", "value"), 0, False, False),
    ("request", AMOUNT_REQUEST, ("amount", "value"), 5e-324, True, True),
]


@pytest.mark.parametrize(
    ("name", "message", "path", "value", "python", "rust"),
    EDGE_CASES,
    ids=[f"{case[0]}-{'/'.join(case[2])}-{case[3]!r}"[:60] for case in EDGE_CASES],
)
def test_edge_case_verdicts(
    name: str,
    message: JsonObject,
    path: tuple[str, ...],
    value: object,
    python: bool,
    rust: bool,
) -> None:
    check = CHECKS[name]
    data = with_value(message, path, value)

    assert check.python.is_valid(data) is python
    assert check.rust_accepts(data) is rust
    assert_same_verdict(check, data)


def outcome(parse: Callable[[bytes], object], payload: bytes) -> tuple[str, object]:
    try:
        return ("parsed", parse(payload))
    except OfferValidationError as error:
        return ("rejected", str(error))


@pytest.mark.parametrize(("name", "message"), VALID_MESSAGES)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parse_same_with_python_only(name: str, message: JsonObject, data: st.DataObject) -> None:
    payload = json.dumps(data.draw(mutated(message))).encode()
    parse = PARSERS[name]

    with_rust = outcome(parse, payload)
    with mock.patch.object(SchemaCheck, "rust_accepts", return_value=False):
        python_only = outcome(parse, payload)

    assert with_rust == python_only


def test_whitespace_class_matches_python() -> None:
    every_character = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))
    python = set("".join(re.findall(r"\s+", every_character)))
    translated = set("".join(re.findall(f"[{python_whitespace_class()}]+", every_character)))

    assert translated == python


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^[A-Z]{3}$", r"^[A-Z]{3}$"),
        (r"^\d+\.\d+$", r"^[0-9]+\.[0-9]+$"),
        (r"^[+\d-]$", r"^[+0-9-]$"),
        (r"a\$b", r"a\$b"),
    ],
)
def test_rust_pattern_translates(pattern: str, expected: str) -> None:
    assert rust_pattern(pattern) == expected


def test_rust_pattern_translates_whitespace() -> None:
    translated = rust_pattern(r"^[^@\s]+\s$")

    assert translated == f"^[^@{python_whitespace_class()}]+[{python_whitespace_class()}]$"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^[A-Z]{3}$", r"^[A-Z]{3}\Z"),
        (r"^a$|^b$", r"^a\Z|^b\Z"),
        (r"^[$]$", r"^[$]\Z"),
        (r"^[^$]$", r"^[^$]\Z"),
        (r"^[]$]$", r"^[]$]\Z"),
        (r"^[^]$]$", r"^[^]$]\Z"),
        (r"^a\$$", r"^a\$\Z"),
        (r"^[\]$]$", r"^[\]$]\Z"),
    ],
)
def test_python_pattern_anchors_end(pattern: str, expected: str) -> None:
    assert python_pattern(pattern) == expected


@pytest.mark.parametrize("text", ["PLN\n", "PLN\n\n", "PLN\r"])
def test_protocol_validator_rejects_line_break(text: str) -> None:
    validator = ProtocolValidator({"type": "string", "pattern": "^[A-Z]{3}$"})

    (error,) = validator.iter_errors(text)

    assert error.message == f"{text!r} does not match '^[A-Z]{{3}}$'"


def test_protocol_validator_accepts_whole_match() -> None:
    validator = ProtocolValidator({"pattern": "^[A-Z]{3}$"})

    assert validator.is_valid("PLN")
    assert validator.is_valid(5), "pattern applies to strings only"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^\w+$", r"the escape \w"),
        (r"^\bx$", r"the escape \b"),
        (r"^\Sx$", r"the escape \S"),
        (r"^a.b$", "'.' outside a character class"),
        (r"(?i)^a$", "a group with flags"),
        (r"^(?=a)a$", "a group with flags or a lookaround"),
        (r"^[[:alpha:]]$", "'[:' in a character class"),
        (r"^[a&&b]$", "'&&' in a character class"),
        (r"^[a--b]$", "'--' in a character class"),
        (r"^[]a]$", "']' first in a character class"),
        (r"^[ab$", "without its closing ']'"),
        ("a\\", "the escape \\,"),
    ],
)
def test_rust_pattern_rejects_unknown_syntax(pattern: str, expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        rust_pattern(pattern)


def test_rust_schema_rejects_format_keyword() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"at": {"type": "string", "format": "date-time"}},
    }

    with pytest.raises(ValueError, match=re.escape("keyword 'format' at #/properties/at/format")):
        rust_schema(schema)


def test_rust_schema_rejects_other_draft() -> None:
    with pytest.raises(ValueError, match="draft-07"):
        rust_schema({"$schema": "http://json-schema.org/draft-07/schema#"})


def test_rust_schema_names_bad_pattern() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"word": {"pattern": r"^\w+$"}},
    }

    with pytest.raises(ValueError, match=re.escape("pattern at #/$defs/word/pattern")):
        rust_schema(schema)


def test_rust_schema_keeps_input_unchanged() -> None:
    schema = offer_json_schema()
    before = copy.deepcopy(schema)

    rewritten = rust_schema(schema)

    assert schema == before
    assert rewritten["$defs"]["timestamp"]["pattern"].startswith("^[0-9]{4}-")
