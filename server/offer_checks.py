"""The checks of a batch of received messages that pick out the offers to store together.

``check_offers`` runs the checks of ``server.message_handling`` (topic, size, schema, topic
agreement, registration) on each message. It returns a ``CheckedOffer`` for a valid offer of an
admitted member and ``None`` for any other message: a withdrawal, status, answer, empty payload,
a message that fails a check, or one whose registration lookup failed. Those take the path of a
single message, which repeats the checks and records the rejection or retries the lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kooperant.mqtt import ReceivedMessage
from kooperant.mqtt.filters import topic_matches
from kooperant.protocol import OfferValidationError, TopicError, message_key
from server.errors import StorageError
from server.registration_cache import RegistrationCache
from server.storage import OfferToStore
from server.validation import (
    PayloadTooLargeError,
    TopicMismatchError,
    check_size,
    validated_offer,
)

_INVALID = (TopicError, OfferValidationError, TopicMismatchError, PayloadTooLargeError)


@dataclass(frozen=True, slots=True)
class CheckedOffer:
    """A received offer that passed every check, with what ``Storage.store_offers`` needs."""

    topic: str
    payload: bytes
    item: OfferToStore


def check_offers(
    messages: Sequence[ReceivedMessage],
    offer_filter: str,
    registration: RegistrationCache,
    clock: Callable[[], datetime],
) -> list[CheckedOffer | None]:
    """Return, for each message in order, its ``CheckedOffer`` or ``None`` (see the module).

    Registration lookups may query the storage, so call this in a worker thread.
    """
    return [_checked(message, offer_filter, registration, clock) for message in messages]


def _checked(
    message: ReceivedMessage,
    offer_filter: str,
    registration: RegistrationCache,
    clock: Callable[[], datetime],
) -> CheckedOffer | None:
    topic = message.topic
    payload = message.payload
    if not payload or not topic_matches(topic, offer_filter):
        return None

    received_at = clock()
    try:
        check_size(payload)
        offer = validated_offer(topic, payload)
    except _INVALID:
        return None

    try:
        if registration.rejection_reason(offer.cluster, offer.member) is not None:
            return None
    except StorageError:
        return None

    item = OfferToStore(offer, received_at, message_key(offer.envelope, payload))
    return CheckedOffer(topic, payload, item)
