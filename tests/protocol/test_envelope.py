"""The envelope: message ids, sequence numbers and the key of a delivered message."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kooperant.protocol import (
    MAX_SEQUENCE,
    Envelope,
    OfferValidationError,
    Withdrawal,
    WithdrawalReason,
    message_key,
    new_message_id,
    next_sequence,
    parse_offer,
    parse_withdrawal,
)
from tests.protocol.test_offer import machine_offer

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
NOW_MICROSECONDS = 1_796_378_400_000_000
MESSAGE_ID_RULE = (
    "use 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
)
ENVELOPE = Envelope("5f0e7c1e-2a4b-4c7e-9d3f-0b1a2c3d4e5f", 1_796_378_400_000_001)


def test_next_sequence_follows_clock() -> None:
    assert next_sequence(5, NOW) == NOW_MICROSECONDS


def test_next_sequence_previous_ahead_of_clock() -> None:
    ahead = NOW_MICROSECONDS + 10_000_000

    assert next_sequence(ahead, NOW) == ahead + 1


def test_next_sequence_equal_clock_still_increases() -> None:
    assert next_sequence(NOW_MICROSECONDS, NOW) == NOW_MICROSECONDS + 1


def test_next_sequence_clock_set_back_still_increases() -> None:
    first = next_sequence(0, NOW)

    second = next_sequence(first, NOW - timedelta(hours=1))

    assert second == first + 1


def test_next_sequence_after_lost_state_exceeds_old() -> None:
    sent = [0]
    for minute in range(3):
        sent.append(next_sequence(sent[-1], NOW + timedelta(minutes=minute)))

    after_restart = next_sequence(0, NOW + timedelta(minutes=5))

    assert after_restart > max(sent)


def test_next_sequence_other_offset_same_instant() -> None:
    warsaw = NOW.astimezone(timezone(timedelta(hours=1)))

    assert next_sequence(0, warsaw) == next_sequence(0, NOW)


def test_next_sequence_naive_time_rejected() -> None:
    with pytest.raises(ValueError, match="naive datetime 2026-12-04 10:00:00"):
        next_sequence(0, datetime(2026, 12, 4, 10, 0))


def test_next_sequence_negative_previous_rejected() -> None:
    with pytest.raises(ValueError, match="previous sequence number -1 is negative"):
        next_sequence(-1, NOW)


def test_next_sequence_beyond_maximum_rejected() -> None:
    with pytest.raises(ValueError, match=f"exceeds the maximum {MAX_SEQUENCE}"):
        next_sequence(MAX_SEQUENCE, NOW)


def test_new_message_id_is_uuid4_text() -> None:
    first = new_message_id()

    assert uuid.UUID(first).version == 4
    assert str(uuid.UUID(first)) == first
    assert new_message_id() != first
    assert Envelope(first, 1).message_id == first


def test_message_key_uses_message_id() -> None:
    assert message_key(ENVELOPE, b"{}") == ENVELOPE.message_id


def test_message_key_without_envelope_hashes_payload() -> None:
    payload = b'{"schema":"kooperant.offer/1"}'

    key = message_key(None, payload)

    assert key == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert message_key(None, payload + b" ") != key


@pytest.mark.parametrize(
    ("message_id", "seq", "expected"),
    [
        pytest.param(
            "",
            1,
            "invalid message_id '': use 1 to 128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit",
            id="empty-id",
        ),
        pytest.param("a" * 129, 1, "invalid message_id 'aaaa", id="id-too-long"),
        pytest.param("-lead", 1, "invalid message_id '-lead'", id="id-leading-dash"),
        pytest.param("a/b", 1, "invalid message_id 'a/b'", id="id-slash"),
        pytest.param(
            "id", 0, f"invalid seq 0: expected an integer from 1 to {MAX_SEQUENCE}", id="zero"
        ),
        pytest.param("id", MAX_SEQUENCE + 1, f"invalid seq {MAX_SEQUENCE + 1}: ", id="too-big"),
        pytest.param("id", True, "invalid seq true: ", id="bool"),
    ],
)
def test_envelope_rejects_bad_values(message_id: str, seq: int, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        Envelope(message_id, seq)

    assert str(caught.value).startswith(expected)


def test_envelope_limits_accepted() -> None:
    longest = Envelope("a" + "b:c.d_e-" * 15 + "f" * 7, MAX_SEQUENCE)

    assert len(longest.message_id) == 128
    assert Envelope("x", 1).seq == 1


def test_offer_round_trip_with_envelope() -> None:
    offer = machine_offer().with_envelope(ENVELOPE)

    payload = offer.to_payload()

    data = json.loads(payload)
    assert data["message_id"] == ENVELOPE.message_id
    assert data["seq"] == ENVELOPE.seq
    assert parse_offer(payload) == offer


def test_offer_without_envelope_has_no_envelope_fields() -> None:
    data = json.loads(machine_offer().to_payload())

    assert "message_id" not in data
    assert "seq" not in data


def test_with_envelope_leaves_original() -> None:
    offer = machine_offer()

    changed = offer.with_envelope(ENVELOPE)

    assert offer.envelope is None
    assert changed.envelope == ENVELOPE
    assert changed.with_envelope(None) == offer


def test_legacy_offer_parses_without_envelope() -> None:
    data = {**machine_offer().to_json(), "schema": "kooperant.offer/1"}
    del data["accepts_requests"]

    offer = parse_offer(json.dumps(data).encode())

    assert offer.envelope is None
    assert offer == machine_offer()


def test_withdrawal_round_trip_with_envelope() -> None:
    withdrawal = Withdrawal(
        "pomorskie-metal", "acme", "cnc-5ax-01", NOW, WithdrawalReason.EXPIRED
    ).with_envelope(ENVELOPE)

    payload = withdrawal.to_payload()

    assert json.loads(payload)["seq"] == ENVELOPE.seq
    assert parse_withdrawal(payload) == withdrawal


def _offer_with(**changes: object) -> bytes:
    data = {**machine_offer().with_envelope(ENVELOPE).to_json(), **changes}
    return json.dumps({key: value for key, value in data.items() if value is not _ABSENT}).encode()


_ABSENT = object()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"seq": _ABSENT},
            "message_id and seq come together: the payload has message_id but no seq",
            id="seq-missing",
        ),
        pytest.param(
            {"message_id": _ABSENT},
            "message_id and seq come together: the payload has seq but no message_id",
            id="message-id-missing",
        ),
        pytest.param(
            {"seq": 1.0},
            f"invalid seq 1.0: expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-float",
        ),
        pytest.param(
            {"seq": True},
            f"invalid seq true: expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-bool",
        ),
        pytest.param(
            {"seq": "7"},
            f"invalid seq '7': expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-text",
        ),
        pytest.param(
            {"seq": None},
            f"invalid seq null: expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-null",
        ),
        pytest.param(
            {"seq": 0},
            f"invalid seq 0: expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-zero",
        ),
        pytest.param(
            {"seq": -5},
            f"invalid seq -5: expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-negative",
        ),
        pytest.param(
            {"seq": 2**53},
            f"invalid seq {2**53}: expected an integer from 1 to {MAX_SEQUENCE}",
            id="seq-above-maximum",
        ),
        pytest.param(
            {"message_id": "has space"},
            "invalid message_id 'has space': " + MESSAGE_ID_RULE,
            id="message-id-space",
        ),
        pytest.param(
            {"message_id": 42},
            "invalid message_id 42: " + MESSAGE_ID_RULE,
            id="message-id-number",
        ),
        pytest.param(
            {"message_id": "x" * 129},
            f"invalid message_id '{'x' * 129}': " + MESSAGE_ID_RULE,
            id="message-id-too-long",
        ),
    ],
)
def test_offer_bad_envelope_rejected(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(OfferValidationError) as caught:
        parse_offer(_offer_with(**changes))

    assert str(caught.value) == expected


def test_withdrawal_half_envelope_rejected() -> None:
    data = Withdrawal("c", "m", "r", NOW, WithdrawalReason.WITHDRAWN).to_json()
    data["seq"] = 3

    with pytest.raises(OfferValidationError) as caught:
        parse_withdrawal(json.dumps(data).encode())

    assert str(caught.value) == (
        "message_id and seq come together: the payload has seq but no message_id"
    )
