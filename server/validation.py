"""Checks of a received message: topic layout, payload, and agreement between the two."""

from __future__ import annotations

from kooperant.protocol import (
    Offer,
    Withdrawal,
    parse_offer,
    parse_offer_topic,
    parse_withdrawal,
    parse_withdrawal_topic,
)


class TopicMismatchError(ValueError):
    """Raised when the payload's cluster, member or resource differs from the topic's."""


def validated_offer(topic: str, payload: bytes) -> Offer:
    """Return the offer in ``payload`` if it is valid and belongs to ``topic``.

    Raises ``TopicError``, ``OfferValidationError`` or ``TopicMismatchError`` with the reason.
    """
    expected = parse_offer_topic(topic)
    offer = parse_offer(payload)
    _check_same_resource(expected, (offer.cluster, offer.member, offer.resource))
    return offer


def validated_withdrawal(topic: str, payload: bytes) -> Withdrawal:
    """Return the withdrawal in ``payload`` if it is valid and belongs to ``topic``.

    Raises ``TopicError``, ``OfferValidationError`` or ``TopicMismatchError`` with the reason.
    """
    expected = parse_withdrawal_topic(topic)
    withdrawal = parse_withdrawal(payload)
    _check_same_resource(expected, (withdrawal.cluster, withdrawal.member, withdrawal.resource))
    return withdrawal


def _check_same_resource(expected: tuple[str, str, str], received: tuple[str, str, str]) -> None:
    if received != expected:
        raise TopicMismatchError(
            f"payload is for cluster/member/resource {'/'.join(received)!r} "
            f"but the topic is for {'/'.join(expected)!r}"
        )
