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
from kooperant.protocol.answer import Answer, parse_answer
from kooperant.protocol.topics import parse_answer_topic
from server.storage.request_routing import AnswerReceipt
from server.storage.requests import AnswerOutcome


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


def validated_answer(topic: str, payload: bytes) -> Answer:
    """Return the answer in ``payload`` if it is valid and belongs to ``topic``.

    An answer's topic names the request instead of the resource, so cluster, member and request
    id must agree. Raises ``TopicError``, ``OfferValidationError`` or ``TopicMismatchError``.
    """
    expected = parse_answer_topic(topic)
    answer = parse_answer(payload)
    received = (answer.cluster, answer.member, answer.request_id)
    if received != expected:
        raise TopicMismatchError(
            f"payload is for cluster/member/request {'/'.join(received)!r} "
            f"but the topic is for {'/'.join(expected)!r}"
        )
    return answer


def answer_rejection(answer: Answer, receipt: AnswerReceipt) -> str | None:
    """Return why a stored answer does not fit its request, or None when it fits."""
    if receipt.outcome is AnswerOutcome.UNKNOWN_REQUEST:
        return (
            f"answer to unknown request {answer.request_id}: no request with this id is stored "
            "on this aggregator"
        )
    if receipt.outcome is AnswerOutcome.MISMATCH:
        offer = f"{answer.cluster}/{answer.member}/{answer.resource}"
        return (
            f"answer to request {answer.request_id} names the offer {offer!r}, "
            f"but the request is for {receipt.requested_offer!r}"
        )
    return None


def _check_same_resource(expected: tuple[str, str, str], received: tuple[str, str, str]) -> None:
    if received != expected:
        raise TopicMismatchError(
            f"payload is for cluster/member/resource {'/'.join(received)!r} "
            f"but the topic is for {'/'.join(expected)!r}"
        )
