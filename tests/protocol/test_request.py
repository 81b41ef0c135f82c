"""The request message and its topic."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kooperant.intervals import Interval
from kooperant.protocol import (
    MAX_PAYLOAD_BYTES,
    MAX_REQUEST_MESSAGE_CHARACTERS,
    REQUEST_SCHEMA_ID,
    CapacityRequest,
    Contact,
    Envelope,
    OfferValidationError,
    RequestedAmount,
    TopicError,
    new_request_id,
    parse_request,
    parse_request_topic,
    request_json_schema,
    request_subscription,
    request_topic,
)

REQUEST_ID = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
CREATED_AT = datetime(2026, 12, 4, 10, 0, tzinfo=timezone(timedelta(hours=1)))
EXPIRES_AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
SLOT = Interval(datetime(2026, 12, 8, 6, 0, tzinfo=UTC), datetime(2026, 12, 8, 14, 0, tzinfo=UTC))


def slot_request(**changes: Any) -> CapacityRequest:
    fields: dict[str, Any] = {
        "request_id": REQUEST_ID,
        "cluster": "pomorskie-metal",
        "member": "acme",
        "resource": "cnc-5ax-01",
        "requester": "beta-tools",
        "created_at": CREATED_AT,
        "expires_at": EXPIRES_AT,
        "contact": Contact("Anna Nowak", email="anna.nowak@beta.example", phone="+48 58 123 45 67"),
        "message": "Potrzebujemy frezowania 5-osiowego, ok. 40 detali.",
        "slot": SLOT,
    }
    fields.update(changes)
    return CapacityRequest(**fields)


def amount_request() -> CapacityRequest:
    return slot_request(
        resource="team-dev",
        slot=None,
        amount=RequestedAmount("person_days", 3.5, "days", label="python"),
        contact=Contact("Anna Nowak", phone="+48 58 123 45 67"),
        message="",
        envelope=Envelope("0b7d5c2e-8f41-4a8e-b1c4-6a2f9e3d7c10", 1796385600000000),
    )


def payload_with(changes: dict[str, Any], removed: tuple[str, ...] = ()) -> bytes:
    data = {**slot_request().to_json(), **changes}
    for key in removed:
        del data[key]
    return json.dumps(data).encode()


def test_slot_request_round_trip() -> None:
    message = slot_request()

    assert parse_request(message.to_payload()) == message


def test_amount_request_round_trip() -> None:
    message = amount_request()

    assert parse_request(message.to_payload()) == message


def test_request_round_trip_keeps_microseconds() -> None:
    message = slot_request(created_at=CREATED_AT.replace(microsecond=250_000))

    assert parse_request(message.to_payload()) == message


def test_request_payload_fields() -> None:
    data = json.loads(amount_request().to_payload())

    assert data["schema"] == REQUEST_SCHEMA_ID
    assert data["amount"] == {
        "quantity": "person_days",
        "value": 3.5,
        "unit": "days",
        "label": "python",
    }
    assert "slot" not in data
    assert data["contact"] == {"name": "Anna Nowak", "phone": "+48 58 123 45 67"}
    assert data["message_id"] == "0b7d5c2e-8f41-4a8e-b1c4-6a2f9e3d7c10"
    assert data["seq"] == 1796385600000000


def test_request_without_envelope_parses() -> None:
    data = json.loads(slot_request().to_payload())

    assert "message_id" not in data
    assert parse_request(slot_request().to_payload()).envelope is None


AMOUNT_JSON = {"quantity": "person_days", "value": 2, "unit": "days"}


@pytest.mark.parametrize(
    ("changes", "removed", "expected"),
    [
        (
            {"request_id": "3F2B8C1E-7D4A-4E5F-9A6B-0C1D2E3F4A5B"},
            (),
            "at request_id: request id '3F2B8C1E-7D4A-4E5F-9A6B-0C1D2E3F4A5B' is not a UUID 4",
        ),
        (
            {"request_id": "3f2b8c1e-7d4a-1e5f-9a6b-0c1d2e3f4a5b"},
            (),
            "at request_id: request id '3f2b8c1e-7d4a-1e5f-9a6b-0c1d2e3f4a5b' is not a UUID 4",
        ),
        (
            {"created_at": "2026-12-04T10:00:00"},
            (),
            "invalid date-time '2026-12-04T10:00:00' at created_at",
        ),
        (
            {"slot": {"start": "2026-12-08T06:00:00Z", "end": "2026-12-08T14:00:00"}},
            (),
            "invalid date-time '2026-12-08T14:00:00' at slot/end",
        ),
        (
            {"created_at": "2026-13-04T10:00:00Z"},
            (),
            "invalid date-time '2026-13-04T10:00:00Z' at created_at",
        ),
        (
            {"slot": {"start": "2026-12-08T06:00:00Z", "end": "2026-12-08T06:00:00Z"}},
            (),
            "invalid request at slot/end: '2026-12-08T06:00:00Z' is not after slot/start",
        ),
        (
            {"slot": {"start": "2026-12-08T06:00:00Z", "end": "2026-12-08T05:00:00Z"}},
            (),
            "invalid request at slot/end: '2026-12-08T05:00:00Z' is not after slot/start",
        ),
        (
            {"expires_at": "2026-12-04T09:00:00Z"},
            (),
            "invalid request at expires_at: 2026-12-04T09:00:00[+]00:00 is not after created_at",
        ),
        (
            {"expires_at": "2026-12-04T08:00:00Z"},
            (),
            "invalid request at expires_at: 2026-12-04T08:00:00[+]00:00 is not after created_at",
        ),
        ({"amount": AMOUNT_JSON}, (), "exactly one of slot .* and amount .*, found both"),
        ({}, ("slot",), "exactly one of slot .* and amount .*, found neither"),
        (
            {"requester": "acme"},
            (),
            "invalid request at requester: member 'acme' cannot request capacity of its own",
        ),
        (
            {"contact": {"name": "Anna Nowak"}},
            (),
            "invalid request at contact: give email or phone, or both; found neither",
        ),
        (
            {"contact": {"name": "", "email": "a@b.pl"}},
            (),
            "invalid request at contact/name: 0 characters, the minimum is 1",
        ),
        (
            {"contact": {"name": "A", "email": "not-an-address"}},
            (),
            "invalid request at contact/email: 'not-an-address' is not an email address",
        ),
        (
            {"contact": {"name": "A", "phone": "call me"}},
            (),
            "invalid request at contact/phone: 'call me' is not a phone number",
        ),
        (
            {"message": "x" * 2001},
            (),
            "invalid request at message: 2001 characters, the maximum is 2000",
        ),
        (
            {"amount": {**AMOUNT_JSON, "value": 0}},
            ("slot",),
            "invalid request at amount/value: 0 must be above 0",
        ),
        (
            {"amount": {**AMOUNT_JSON, "unit": ""}},
            ("slot",),
            "invalid request at amount/unit: 0 characters, the minimum is 1",
        ),
        ({"requester": "a/b"}, (), "invalid id 'a/b' at requester"),
        ({"requester": "beta-tools\n"}, (), "invalid id 'beta-tools\\\\n' at requester"),
        (
            {"request_id": "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b\n"},
            (),
            "invalid request at request_id: request id '3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
            "\\\\n' is not a UUID 4",
        ),
        ({}, ("contact",), "invalid request at [(]root[)]: 'contact' is a required property"),
        ({"priority": "high"}, (), "invalid request at [(]root[)]: Additional properties"),
        (
            {"schema": "kooperant.request/2.0"},
            (),
            "unsupported schema 'kooperant.request/2.0': this aggregator reads major version 1",
        ),
        (
            {"schema": "kooperant.answer/1.0"},
            (),
            "unsupported schema 'kooperant.answer/1.0': a request names kooperant.request/1.x",
        ),
        ({"seq": 5}, (), "message_id and seq come together: the payload has seq but no message_id"),
    ],
)
def test_invalid_request_rejected(
    changes: dict[str, Any], removed: tuple[str, ...], expected: str
) -> None:
    payload = payload_with(changes, removed)

    with pytest.raises(OfferValidationError, match=expected):
        parse_request(payload)


@pytest.mark.parametrize(
    ("changes", "removed"),
    [
        ({"amount": AMOUNT_JSON}, ()),
        ({}, ("slot",)),
        ({"contact": {"name": "Anna Nowak"}}, ()),
        ({"message": "x" * (MAX_REQUEST_MESSAGE_CHARACTERS + 1)}, ()),
    ],
)
def test_request_schema_alone_rejects(changes: dict[str, Any], removed: tuple[str, ...]) -> None:
    validator = Draft202012Validator(request_json_schema())
    data = json.loads(payload_with(changes, removed))

    assert not validator.is_valid(data)


def test_request_schema_accepts_both_kinds() -> None:
    validator = Draft202012Validator(request_json_schema())

    assert validator.is_valid(slot_request().to_json())
    assert validator.is_valid(amount_request().to_json())


def test_request_newer_minor_version_drops_unknown_field() -> None:
    payload = payload_with({"schema": "kooperant.request/1.1", "priority": "high"})

    parsed = parse_request(payload)

    assert parsed == slot_request()
    assert "priority" not in parsed.to_json()


def test_request_oversize_payload_rejected() -> None:
    payload = payload_with({"message": "x" * MAX_PAYLOAD_BYTES})

    with pytest.raises(OfferValidationError, match=r"payload of \d+ bytes exceeds the limit"):
        parse_request(payload)


def test_request_invalid_utf8_rejected() -> None:
    payload = slot_request().to_payload().replace(b"Potrzebujemy", b"Potrzebujemy \xff")

    with pytest.raises(OfferValidationError, match="request payload is not UTF-8"):
        parse_request(payload)


def test_request_invalid_json_rejected() -> None:
    with pytest.raises(OfferValidationError, match="request payload is not JSON"):
        parse_request(b'{"schema": ')


def test_request_not_an_object_rejected() -> None:
    with pytest.raises(OfferValidationError, match=r"invalid request at \(root\)"):
        parse_request(b"[]")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"request_id": "not-a-uuid"}, "invalid request id 'not-a-uuid'"),
        ({"created_at": datetime(2026, 12, 4, 10, 0)}, "created_at .* has no time zone"),
        ({"expires_at": CREATED_AT}, "invalid request at expires_at"),
        ({"requester": "acme"}, "invalid request at requester"),
        ({"slot": None}, "found neither"),
        ({"amount": RequestedAmount("disk_free", 10, "GiB")}, "found both"),
        ({"message": "x" * 2001}, "invalid request at message: 2001 characters"),
        (
            {"slot": Interval(SLOT.start, SLOT.start)},
            "invalid request at slot/end: .* is not after slot/start",
        ),
    ],
)
def test_request_constructor_rejects(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        slot_request(**changes)


def test_contact_needs_email_or_phone() -> None:
    with pytest.raises(ValueError, match="needs an email, a phone number or both"):
        Contact("Anna Nowak")


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_requested_amount_rejects_value(value: float) -> None:
    with pytest.raises(ValueError, match="must be above 0"):
        RequestedAmount("disk_free", value, "GiB")


def test_new_request_id_is_canonical_uuid4() -> None:
    request_id = new_request_id()

    assert slot_request(request_id=request_id).request_id == request_id
    assert request_id == request_id.lower()


def test_request_topic_round_trip() -> None:
    topic = request_topic("pomorskie-metal", "acme", REQUEST_ID)

    assert topic == f"kooperant/v1/pomorskie-metal/acme/requests/{REQUEST_ID}"
    assert parse_request_topic(topic) == ("pomorskie-metal", "acme", REQUEST_ID)


def test_request_subscription_of_one_member() -> None:
    assert request_subscription("pomorskie-metal", "acme") == (
        "kooperant/v1/pomorskie-metal/acme/requests/+"
    )


def test_request_subscription_rejects_wildcard_member() -> None:
    with pytest.raises(TopicError, match=r"invalid member id '\+'"):
        request_subscription("pomorskie-metal", "+")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "+",
        "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5",
        "3F2B8C1E-7D4A-4E5F-9A6B-0C1D2E3F4A5B",
        "3f2b8c1e7d4a4e5f9a6b0c1d2e3f4a5b",
        "3f2b8c1e-7d4a-1e5f-9a6b-0c1d2e3f4a5b",
        "3f2b8c1e-7d4a-4e5f-ca6b-0c1d2e3f4a5b",
        "{3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b}",
    ],
)
def test_request_topic_rejects_bad_request_id(bad: str) -> None:
    with pytest.raises(TopicError, match="invalid request id"):
        request_topic("pomorskie-metal", "acme", bad)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"kooperant/v1/pom/acme/answers/{REQUEST_ID}", "is not a request topic"),
        (f"kooperant/v1/pom/acme/offers/{REQUEST_ID}", "is not a request topic"),
        (f"kooperant/v2/pom/acme/requests/{REQUEST_ID}", "is not a request topic"),
        (f"kooperant/v1/pom/acme/requests/{REQUEST_ID}/x", "is not a request topic"),
        ("kooperant/v1/pom/acme/requests", "is not a request topic"),
        ("kooperant/v1/pom/acme/requests/cnc-01", "invalid request id 'cnc-01'"),
        ("kooperant/v1/pom/acme/requests/+", "invalid request id '[+]'"),
        (f"kooperant/v1/pom/a+b/requests/{REQUEST_ID}", "invalid member id 'a[+]b'"),
        (f"kooperant/v1/#/acme/requests/{REQUEST_ID}", "invalid cluster id '#'"),
    ],
)
def test_parse_request_topic_rejects(topic: str, expected: str) -> None:
    with pytest.raises(TopicError, match=expected):
        parse_request_topic(topic)


def test_request_doc_example_parses() -> None:
    text = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text("utf-8")
    examples = [
        block
        for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)
        if '"kooperant.request/' in block
    ]

    assert len(examples) == 1
    assert parse_request(examples[0].encode()).cluster == "pomorskie-metal"
