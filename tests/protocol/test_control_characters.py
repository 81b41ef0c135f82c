"""Control and format characters in the text fields of the request and answer messages."""

from __future__ import annotations

import json

import pytest

from kooperant.protocol import AnswerState, Contact, OfferValidationError, parse_answer
from kooperant.protocol.request import parse_request, request_text_problem
from kooperant.protocol.text import find_control_character
from tests.protocol.test_answer import answer
from tests.protocol.test_answer import payload_with as answer_payload
from tests.protocol.test_request import payload_with as request_payload
from tests.protocol.test_request import slot_request

CONTACT = {"name": "Anna Nowak", "email": "anna.nowak@beta.example", "phone": "+48 58 123 45 67"}
# Line feed, carriage return, escape, DEL and the C1 CSI (Cc), then bidi overrides and
# isolates, zero width space, soft hyphen and byte order mark (Cf).
FORBIDDEN = [
    "\n",
    "\r",
    "\x1b",
    "\x7f",
    "\x9b",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u200b",
    "\u00ad",
    "\ufeff",
]


def contact_payload(field: str, character: str) -> bytes:
    """Return a request payload with ``character`` inserted at position 6 of a contact field."""
    value = CONTACT[field]
    return request_payload({"contact": {**CONTACT, field: f"{value[:5]}{character}{value[5:]}"}})


@pytest.mark.parametrize("character", FORBIDDEN)
def test_parse_request_rejects_name_character(character: str) -> None:
    with pytest.raises(OfferValidationError) as raised:
        parse_request(contact_payload("name", character))

    message = str(raised.value)
    assert message.startswith("invalid request at contact/name: ")
    assert f"character U+{ord(character):04X} at position 6" in message


@pytest.mark.parametrize("character", FORBIDDEN)
@pytest.mark.parametrize("field", ["email", "phone"])
def test_parse_request_rejects_address_character(field: str, character: str) -> None:
    """The schema's patterns reject some of these first, with their own message."""
    with pytest.raises(OfferValidationError) as raised:
        parse_request(contact_payload(field, character))

    assert str(raised.value).startswith(f"invalid request at contact/{field}: ")


@pytest.mark.parametrize("character", ["\x1b", "\u202e", "\u200b"])
def test_parse_request_email_character_named(character: str) -> None:
    with pytest.raises(OfferValidationError) as raised:
        parse_request(contact_payload("email", character))

    assert f"character U+{ord(character):04X} at position 6" in str(raised.value)


@pytest.mark.parametrize("character", ["\r", "\x1b", "\x00", "\u202e", "\u2066", "\x0b"])
def test_parse_request_rejects_message_character(character: str) -> None:
    payload = request_payload({"message": f"Dzień dobry{character}, proszę"})

    with pytest.raises(OfferValidationError) as raised:
        parse_request(payload)

    message = str(raised.value)
    assert message.startswith("invalid request at message: ")
    assert f"character U+{ord(character):04X} at position 12" in message
    assert "only line feed and tab are allowed" in message


def test_parse_request_keeps_message_lines() -> None:
    text = "Dzień dobry,\n\tpotrzebujemy 40 detali.\nPozdrawiam"

    parsed = parse_request(request_payload({"message": text}))

    assert parsed.message == text


def test_parse_request_keeps_letters_and_emoji() -> None:
    contact = {**CONTACT, "name": "Zażółć Gęślą 🚀 ג'ון"}

    parsed = parse_request(request_payload({"contact": contact}))

    assert parsed.contact.name == contact["name"]


def test_request_text_problem_names_kind() -> None:
    control = request_text_problem(Contact("A\nB", email="a@b.example"), "")
    format_ = request_text_problem(Contact("AB", email="a@b.example"), "x\u202ey")

    assert control is not None
    assert "is a control character" in control
    assert format_ is not None
    assert format_.startswith("invalid request at message: character U+202E at position 2")
    assert "is a format character" in format_


def test_request_constructor_reads_old_text() -> None:
    """Requests stored before the rule existed are still read from storage."""
    request = slot_request(contact=Contact("A\nB", email="a@b.example"), message="x\ry")

    assert request.contact.name == "A\nB"


def test_parse_request_stored_text_unchecked() -> None:
    payload = contact_payload("name", "\n")

    parsed = parse_request(payload, check_text=False)

    assert parsed.contact.name == "Anna \nNowak"


def test_find_control_character_allowed() -> None:
    assert find_control_character("a\nb\tc", frozenset("\n\t")) is None
    found = find_control_character("a\nb\tc")
    assert found is not None
    assert (found.code_point, found.position, found.kind) == ("U+000A", 2, "control")


@pytest.mark.parametrize("character", ["\n", "\t", "\x1b", "\u202e", "\u2069"])
def test_parse_answer_rejects_reason_character(character: str) -> None:
    payload = answer_payload({"state": "declined", "reason": f"Zajęte{character}do piątku"})

    with pytest.raises(OfferValidationError) as raised:
        parse_answer(payload)

    message = str(raised.value)
    assert message.startswith("invalid answer at reason: ")
    assert f"character U+{ord(character):04X} at position 7" in message


@pytest.mark.parametrize("character", ["\n", "\x1b", "\u202e"])
def test_answer_constructor_rejects_reason_character(character: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(character):04X} at position 3"):
        answer(AnswerState.DECLINED, f"ab{character}c")


def test_parse_answer_keeps_plain_reason() -> None:
    payload = answer_payload({"state": "declined", "reason": "Zajęte do piątku (zmiana 2)."})

    parsed = parse_answer(payload)

    assert parsed.reason == "Zajęte do piątku (zmiana 2)."
    assert json.loads(payload)["reason"] == parsed.reason
