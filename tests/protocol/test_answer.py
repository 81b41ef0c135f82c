"""The answer message and its topic."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kooperant.protocol import (
    ANSWER_SCHEMA_ID,
    MAX_PAYLOAD_BYTES,
    Answer,
    AnswerState,
    Envelope,
    OfferValidationError,
    TopicError,
    answer_json_schema,
    answer_subscription,
    answer_topic,
    parse_answer,
    parse_answer_topic,
)

REQUEST_ID = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
DECIDED_AT = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
ENVELOPE = Envelope("9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f", 1796387400000000)


def answer(state: AnswerState = AnswerState.ACCEPTED, reason: str | None = None) -> Answer:
    return Answer(
        REQUEST_ID, "pomorskie-metal", "acme", "cnc-5ax-01", state, DECIDED_AT, reason, ENVELOPE
    )


def payload_with(changes: dict[str, Any], removed: tuple[str, ...] = ()) -> bytes:
    data = {**answer().to_json(), **changes}
    for key in removed:
        del data[key]
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (AnswerState.DELIVERED, None),
        (AnswerState.ACCEPTED, None),
        (AnswerState.DECLINED, "Maszyna zajęta do końca miesiąca."),
    ],
)
def test_answer_round_trip(state: AnswerState, reason: str | None) -> None:
    message = answer(state, reason)

    assert parse_answer(message.to_payload()) == message


def test_answer_payload_fields() -> None:
    data = json.loads(answer(AnswerState.DECLINED, "busy").to_payload())

    assert data["schema"] == ANSWER_SCHEMA_ID
    assert data["state"] == "declined"
    assert data["reason"] == "busy"
    assert data["message_id"] == ENVELOPE.message_id
    assert data["seq"] == ENVELOPE.seq


def test_answer_without_envelope_not_sent() -> None:
    message = answer().with_envelope(None)

    with pytest.raises(ValueError, match="has no envelope; stamp it with with_envelope"):
        message.to_payload()


@pytest.mark.parametrize(
    ("changes", "removed", "expected"),
    [
        (
            {"state": "declined"},
            (),
            "invalid answer at reason: a declined answer needs the owner's reason",
        ),
        (
            {"reason": "busy"},
            (),
            "invalid answer at reason: only a declined answer has a reason, this one is accepted",
        ),
        (
            {"state": "delivered", "reason": "busy"},
            (),
            "invalid answer at reason: only a declined answer has a reason, this one is delivered",
        ),
        (
            {"state": "declined", "reason": ""},
            (),
            "invalid answer at reason: 0 characters, the minimum is 1",
        ),
        (
            {"state": "declined", "reason": "x" * 501},
            (),
            "invalid answer at reason: 501 characters, the maximum is 500",
        ),
        (
            {"state": "maybe"},
            (),
            "invalid answer at state: 'maybe' is not one of delivered, accepted, declined",
        ),
        (
            {"state": "maybe", "reason": "busy"},
            (),
            "invalid answer at state: 'maybe' is not one of delivered, accepted, declined",
        ),
        (
            {"state": ["accepted"]},
            (),
            r"invalid answer at state: \['accepted'\] is not one of",
        ),
        (
            {"request_id": "3f2b8c1e-7d4a-4e5f-9a6b"},
            (),
            "at request_id: request id '3f2b8c1e-7d4a-4e5f-9a6b' is not a UUID 4",
        ),
        (
            {"decided_at": "2026-12-04T12:30:00"},
            (),
            "invalid date-time '2026-12-04T12:30:00' at decided_at",
        ),
        ({}, ("message_id", "seq"), "'message_id' is a required property"),
        ({}, ("seq",), "message_id and seq come together: the payload has message_id but no seq"),
        ({"seq": 0}, (), "invalid seq 0"),
        ({"member": "a b"}, (), "invalid id 'a b' at member"),
        (
            {"schema": "kooperant.answer/2.0"},
            (),
            "unsupported schema 'kooperant.answer/2.0': this aggregator reads major version 1",
        ),
        (
            {"schema": "kooperant.request/1.0"},
            (),
            "unsupported schema 'kooperant.request/1.0': an answer names kooperant.answer/1.x",
        ),
        ({"note": "x"}, (), r"invalid answer at \(root\): Additional properties"),
    ],
)
def test_invalid_answer_rejected(
    changes: dict[str, Any], removed: tuple[str, ...], expected: str
) -> None:
    payload = payload_with(changes, removed)

    with pytest.raises(OfferValidationError, match=expected):
        parse_answer(payload)


@pytest.mark.parametrize(
    "changes",
    [
        {"state": "declined"},
        {"state": "accepted", "reason": "busy"},
        {"state": "delivered", "reason": "busy"},
    ],
)
def test_answer_schema_alone_rejects_reason(changes: dict[str, Any]) -> None:
    validator = Draft202012Validator(answer_json_schema())

    assert not validator.is_valid({**answer().to_json(), **changes})


def test_answer_schema_accepts_declined_with_reason() -> None:
    validator = Draft202012Validator(answer_json_schema())

    assert validator.is_valid(answer(AnswerState.DECLINED, "busy").to_json())


def test_answer_newer_minor_version_drops_unknown_field() -> None:
    payload = payload_with({"schema": "kooperant.answer/1.1", "note": "see you"})

    parsed = parse_answer(payload)

    assert parsed == answer()
    assert "note" not in parsed.to_json()


def test_answer_oversize_payload_rejected() -> None:
    payload = payload_with({"padding": "x" * MAX_PAYLOAD_BYTES})

    with pytest.raises(OfferValidationError, match=r"payload of \d+ bytes exceeds the limit"):
        parse_answer(payload)


def test_answer_invalid_utf8_rejected() -> None:
    payload = answer(AnswerState.DECLINED, "busy").to_payload().replace(b"busy", b"bu\xffsy")

    with pytest.raises(OfferValidationError, match="answer payload is not UTF-8"):
        parse_answer(payload)


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        (AnswerState.DECLINED, None, "a declined answer needs the owner's reason"),
        (AnswerState.ACCEPTED, "busy", "only a declined answer has a reason"),
        (AnswerState.DECLINED, "x" * 501, "501 characters, the maximum is 500"),
        (AnswerState.DECLINED, "", "0 characters, the minimum is 1"),
    ],
)
def test_answer_constructor_rejects_reason(
    state: AnswerState, reason: str | None, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        answer(state, reason)


def test_answer_constructor_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match=r"decided_at .* has no time zone"):
        Answer(REQUEST_ID, "c", "m", "r", AnswerState.ACCEPTED, datetime(2026, 12, 4, 12))


def test_answer_constructor_rejects_bad_request_id() -> None:
    with pytest.raises(TopicError, match="invalid request id 'req-1'"):
        Answer("req-1", "c", "m", "r", AnswerState.ACCEPTED, DECIDED_AT)


def test_answer_topic_round_trip() -> None:
    topic = answer_topic("pomorskie-metal", "acme", REQUEST_ID)

    assert topic == f"kooperant/v1/pomorskie-metal/acme/answers/{REQUEST_ID}"
    assert parse_answer_topic(topic) == ("pomorskie-metal", "acme", REQUEST_ID)


def test_answer_subscription_for_one_cluster_and_all() -> None:
    assert answer_subscription("pomorskie-metal") == "kooperant/v1/pomorskie-metal/+/answers/+"
    assert answer_subscription() == "kooperant/v1/+/+/answers/+"


def test_answer_topic_rejects_bad_request_id() -> None:
    with pytest.raises(TopicError, match="invalid request id 'cnc-01'"):
        answer_topic("pomorskie-metal", "acme", "cnc-01")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"kooperant/v1/pom/acme/requests/{REQUEST_ID}", "is not an answer topic"),
        (f"kooperant/v1/pom/acme/withdrawals/{REQUEST_ID}", "is not an answer topic"),
        (f"other/v1/pom/acme/answers/{REQUEST_ID}", "is not an answer topic"),
        ("kooperant/v1/pom/acme/answers/", "invalid request id ''"),
        ("kooperant/v1/pom/acme/answers/#", "invalid request id '#'"),
        (f"kooperant/v1/+/acme/answers/{REQUEST_ID}", r"invalid cluster id '\+'"),
    ],
)
def test_parse_answer_topic_rejects(topic: str, expected: str) -> None:
    with pytest.raises(TopicError, match=expected):
        parse_answer_topic(topic)


def test_answer_doc_example_parses() -> None:
    text = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text("utf-8")
    examples = [
        block
        for block in re.findall(r"```json\n(.*?)```", text, re.DOTALL)
        if '"kooperant.answer/' in block
    ]

    assert len(examples) == 1
    assert parse_answer(examples[0].encode()).cluster == "pomorskie-metal"
