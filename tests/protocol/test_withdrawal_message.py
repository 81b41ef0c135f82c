"""The withdrawal message and its topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kooperant.protocol import (
    WITHDRAWAL_SCHEMA_ID,
    OfferValidationError,
    TopicError,
    Withdrawal,
    WithdrawalReason,
    parse_withdrawal,
    parse_withdrawal_topic,
    withdrawal_subscription,
    withdrawal_topic,
)

WITHDRAWN_AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def withdrawal() -> Withdrawal:
    return Withdrawal(
        "pomorskie-metal", "acme", "cnc-5ax-01", WITHDRAWN_AT, WithdrawalReason.WITHDRAWN, True
    )


def test_withdrawal_round_trip() -> None:
    message = withdrawal()

    assert parse_withdrawal(message.to_payload()) == message


def test_withdrawal_payload_names_schema() -> None:
    data = json.loads(withdrawal().to_payload())

    assert data["schema"] == WITHDRAWAL_SCHEMA_ID
    assert data["reason"] == "withdrawn"
    assert data["delete_history"] is True


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"reason": "bored"}, "invalid withdrawal at reason"),
        ({"delete_history": "yes"}, "invalid withdrawal at delete_history"),
        ({"withdrawn_at": "today"}, "invalid withdrawal at withdrawn_at"),
        (
            {"schema": "kooperant.offer/1"},
            "unsupported schema 'kooperant.offer/1': a withdrawal names kooperant.withdrawal/1.x",
        ),
    ],
)
def test_invalid_withdrawal_rejected(changes: dict[str, object], expected: str) -> None:
    payload = json.dumps({**withdrawal().to_json(), **changes}).encode()

    with pytest.raises(OfferValidationError, match=expected):
        parse_withdrawal(payload)


def test_withdrawal_not_json_rejected() -> None:
    with pytest.raises(OfferValidationError, match="not UTF-8 JSON"):
        parse_withdrawal(b"\xff")


def test_withdrawal_topic_round_trip() -> None:
    topic = withdrawal_topic("pomorskie-metal", "acme", "cnc-5ax-01")

    assert topic == "kooperant/v1/pomorskie-metal/acme/withdrawals/cnc-5ax-01"
    assert parse_withdrawal_topic(topic) == ("pomorskie-metal", "acme", "cnc-5ax-01")
    assert (
        withdrawal_subscription("pomorskie-metal") == "kooperant/v1/pomorskie-metal/+/withdrawals/+"
    )


def test_offer_topic_not_a_withdrawal_topic() -> None:
    with pytest.raises(TopicError, match="is not a withdrawal topic"):
        parse_withdrawal_topic("kooperant/v1/c/m/offers/r")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_withdrawal_non_standard_constant_rejected(token: str) -> None:
    text = withdrawal().to_payload().decode()
    payload = text.replace('"delete_history":true', f'"delete_history":{token}').encode()

    with pytest.raises(OfferValidationError) as caught:
        parse_withdrawal(payload)

    assert f"{token} is not a JSON number" in str(caught.value)
