"""Checks of a received message: size, topic layout, payload, and agreement between them."""

from __future__ import annotations

from kooperant.protocol import (
    MAX_PAYLOAD_BYTES,
    MemberStatus,
    Offer,
    Withdrawal,
    parse_offer,
    parse_offer_topic,
    parse_status,
    parse_status_topic,
    parse_withdrawal,
    parse_withdrawal_topic,
)


class TopicMismatchError(ValueError):
    """Raised when the payload's cluster, member or resource differs from the topic's."""


class PayloadTooLargeError(ValueError):
    """Raised for a payload longer than ``MAX_PAYLOAD_BYTES``."""


def check_size(payload: bytes) -> None:
    """Raise ``PayloadTooLargeError`` naming the size and the limit if ``payload`` is too long."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes"
        )


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


def validated_status(topic: str, payload: bytes) -> MemberStatus:
    """Return the member status in ``payload`` if it is valid and belongs to ``topic``.

    Raises ``TopicError``, ``OfferValidationError`` or ``TopicMismatchError`` with the reason.
    """
    expected = parse_status_topic(topic)
    status = parse_status(payload)
    received = (status.cluster, status.member)
    if received != expected:
        raise TopicMismatchError(
            f"payload is for cluster/member {'/'.join(received)!r} "
            f"but the topic is for {'/'.join(expected)!r}"
        )
    return status


def _check_same_resource(expected: tuple[str, str, str], received: tuple[str, str, str]) -> None:
    if received != expected:
        raise TopicMismatchError(
            f"payload is for cluster/member/resource {'/'.join(received)!r} "
            f"but the topic is for {'/'.join(expected)!r}"
        )
