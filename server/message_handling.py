"""Handling of received messages: checks, then storage, retried until it is committed.

``MessageHandler.handle`` returns only when the message's effect, or the record of its
rejection, is committed, so the subscriber may acknowledge the message afterwards.
``MessageHandler.handle_batch`` does the same for a batch in order of arrival: consecutive
offers that pass every check go to one ``Storage.store_offers`` call, and any other message
takes the path of ``handle`` once the offers before it are committed, so the order per topic is
that of arrival. After each of these steps it reports the committed prefix of the batch. The
checks of a single message, in order:

1. A topic outside the offer, withdrawal, status and answer filters is counted in
   ``dropped_messages`` and logged at DEBUG. The broker is not trusted to filter: on connect,
   the embedded amqtt 0.12 broker also sends retained messages that match other clients'
   filters.
2. A payload over ``MAX_PAYLOAD_BYTES`` is rejected.
3. An empty payload clears a retained topic: on an offer topic it removes the current offer, on
   a withdrawal, status or answer topic it changes nothing.
4. The topic and payload are validated (``server.validation``), including a payload whose
   cluster, member or resource (an answer: request id) differs from the topic's.
5. A member that is not registered is rejected while its cluster requires registration.
6. The message is stored under its ``message_key``, so one delivered again is a duplicate. An
   answer to an unknown request, or naming another offer than its request, is rejected then.

A rejected message is logged at WARNING and kept in ``rejected_messages`` with its reason.
While the storage raises ``StorageError``, the handler waits with backoff and tries again; it
logs once when it pauses and once when it resumes. A message that failed ``poison_failures``
times while the database still responds to ``SELECT 1`` is rejected with the storage error as
reason, because retrying it would block every later message.

A batch of offers is retried the same way as a whole. Once it failed ``poison_failures`` times
while the database responds, its offers are stored one at a time under the rule above, so only
the bad one is rejected. A storage that commits part of a batch before it fails makes the
committed offers duplicates on the retry, so they are counted in ``duplicate_messages``
instead of ``accepted_offers``. A storage that writes the batch in one transaction has nothing
committed after a failure, and its counts stay exact.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import ReceivedMessage
from kooperant.mqtt.filters import topic_matches
from kooperant.protocol import (
    Offer,
    OfferValidationError,
    TopicError,
    answer_subscription,
    message_key,
    offer_subscription,
    parse_offer_topic,
    status_subscription,
    withdrawal_subscription,
)
from server.errors import StorageError
from server.offer_checks import CheckedOffer, check_offers
from server.registration_cache import DEFAULT_TTL_SECONDS, RegistrationCache
from server.status import RejectReason, ServerStatus
from server.storage import AnswerOutcome, OfferOutcome, StatusOutcome, Storage, WithdrawalOutcome
from server.validation import (
    PayloadTooLargeError,
    TopicMismatchError,
    answer_rejection,
    check_size,
    validated_answer,
    validated_offer,
    validated_status,
    validated_withdrawal,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

INVALID_MESSAGE_ERRORS = (
    TopicError,
    OfferValidationError,
    TopicMismatchError,
    PayloadTooLargeError,
)


DEFAULT_STORAGE_BACKOFF = BackoffPolicy(minimum=0.5, maximum=30.0)


@dataclass(frozen=True, slots=True)
class StorageRetry:
    """Settings of the retries of a failing storage.

    ``backoff`` sets the delays between attempts, in seconds. After ``poison_failures`` failed
    attempts at one message while the database responds, the message is rejected. Registration
    lookups are cached for ``registration_ttl_seconds``.
    """

    backoff: BackoffPolicy = DEFAULT_STORAGE_BACKOFF
    poison_failures: int = 5
    registration_ttl_seconds: float = DEFAULT_TTL_SECONDS

    def __post_init__(self) -> None:
        if self.poison_failures < 1:
            raise ValueError(f"poison_failures must be at least 1, got {self.poison_failures}")


class _GaveUp:
    """The result of a message that failed ``poison_failures`` times on a responding database."""

    def __init__(self, error: StorageError) -> None:
        self.error = error


class MessageHandler:
    """Checks and stores the messages of ``cluster`` (every cluster when ``None``).

    ``clock`` gives the receive time, ``sleep`` waits between storage attempts and ``rng``
    picks the backoff jitter; tests pass controlled ones.
    """

    def __init__(
        self,
        storage: Storage,
        status: ServerStatus,
        *,
        cluster: str | None,
        clock: Callable[[], datetime],
        retry: StorageRetry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._storage = storage
        self._status = status
        self._clock = clock
        self._retry = retry or StorageRetry()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._filters = {
            "offer": offer_subscription(cluster),
            "withdrawal": withdrawal_subscription(cluster),
            "status": status_subscription(cluster),
            "answer": answer_subscription(cluster),
        }
        cache_options = {"monotonic": monotonic} if monotonic is not None else {}
        self._registration = RegistrationCache(
            storage, ttl_seconds=self._retry.registration_ttl_seconds, **cache_options
        )
        self._paused_since_failures = 0

    @property
    def topic_filters(self) -> tuple[str, ...]:
        """The offer, withdrawal, status and answer filters of the handled cluster."""
        return tuple(self._filters.values())

    async def handle(self, topic: str, payload: bytes) -> None:
        """Check and store one message; raise nothing but ``CancelledError``."""
        self._status.received_messages += 1
        await self._guarded(topic, payload, lambda: self._dispatch(topic, payload))

    async def handle_batch(
        self, messages: Sequence[ReceivedMessage], committed: Callable[[int], None]
    ) -> None:
        """Check and store ``messages`` in order; call ``committed(n)`` once ``messages[:n]`` are.

        Raises nothing but ``CancelledError``.
        """
        checked = await self._check_offers(messages)
        run: list[CheckedOffer] = []
        for index, (message, offer) in enumerate(zip(messages, checked, strict=True)):
            if offer is not None:
                run.append(offer)
                continue
            if run:
                await self._store_run(run)
                committed(index)
                run = []
            await self.handle(message.topic, message.payload)
            committed(index + 1)
        if run:
            await self._store_run(run)
            committed(len(messages))

    async def _check_offers(self, messages: Sequence[ReceivedMessage]) -> list[CheckedOffer | None]:
        """Check ``messages`` in a worker thread; on a bug, send each to the single path."""
        try:
            return await asyncio.to_thread(
                check_offers, messages, self._filters["offer"], self._registration, self._clock
            )
        except Exception:
            logger.exception(
                "Unexpected error while checking a batch of %d messages; handling them one at a "
                "time",
                len(messages),
            )
            return [None] * len(messages)

    async def _guarded(
        self, topic: str, payload: bytes, handling: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Await ``handling()``; record an unexpected error as the message's rejection."""
        try:
            await handling()
        except Exception as error:
            # A bug, not a bad message: keep it as rejected so that ingest goes on.
            logger.exception("Unexpected error while handling the message on %s", topic)
            try:
                await self._reject(
                    topic,
                    payload,
                    f"internal error: {error!r}",
                    self._clock(),
                    RejectReason.INTERNAL_ERROR,
                )
            except Exception:
                logger.exception("Could not record the rejection of the message on %s", topic)

    async def _dispatch(self, topic: str, payload: bytes) -> None:
        kind = self._kind_of(topic)
        if kind is None:
            self._status.dropped_messages += 1
            logger.debug(
                "Dropped message on %s: outside the subscriptions %s",
                topic,
                ", ".join(self._filters.values()),
            )
            return

        received_at = self._clock()
        try:
            check_size(payload)
        except PayloadTooLargeError as error:
            await self._reject(topic, payload, str(error), received_at, RejectReason.TOO_LARGE)
            return

        if not payload:
            await self._clear(kind, topic, received_at)
        elif kind == "offer":
            await self._handle_offer(topic, payload, received_at)
        elif kind == "withdrawal":
            await self._handle_withdrawal(topic, payload, received_at)
        elif kind == "answer":
            await self._handle_answer(topic, payload, received_at)
        else:
            await self._handle_status(topic, payload, received_at)

    def _kind_of(self, topic: str) -> str | None:
        for kind, topic_filter in self._filters.items():
            if topic_matches(topic, topic_filter):
                return kind
        return None

    # Messages

    async def _handle_offer(self, topic: str, payload: bytes, received_at: datetime) -> None:
        try:
            offer = validated_offer(topic, payload)
        except INVALID_MESSAGE_ERRORS as error:
            await self._reject(topic, payload, str(error), received_at, invalid_reason(error))
            return
        if not await self._admitted(topic, payload, received_at, offer.cluster, offer.member):
            return
        await self._store_offer(
            topic, payload, received_at, offer, message_key(offer.envelope, payload)
        )

    async def _store_offer(
        self, topic: str, payload: bytes, received_at: datetime, offer: Offer, message_id: str
    ) -> None:
        outcome = await self._commit(
            topic,
            payload,
            received_at,
            lambda: self._storage.store_offer(offer, received_at, message_id=message_id),
        )
        if outcome is not None:
            self._count_offer(topic, offer, message_id, outcome)

    def _count_offer(
        self, topic: str, offer: Offer, message_id: str, outcome: OfferOutcome
    ) -> None:
        if outcome is OfferOutcome.DUPLICATE:
            self._count_duplicate(topic, message_id)
            return
        self._status.accepted_offers += 1
        if outcome is OfferOutcome.CURRENT:
            logger.debug("Stored offer from %s generated at %s", topic, offer.generated_at)

    async def _store_run(self, run: list[CheckedOffer]) -> None:
        """Store consecutive checked offers together, retried as one until committed.

        After ``poison_failures`` failures on a responding database, or an unexpected error,
        the offers are stored one at a time, each under the rules of a single message.
        """
        self._status.received_messages += len(run)
        batch = [checked.item for checked in run]
        try:
            result = await self._retry_until_committed(
                lambda: self._storage.store_offers(batch), give_up=True
            )
            if not isinstance(result, _GaveUp):
                for checked, outcome in zip(run, result, strict=True):
                    item = checked.item
                    self._count_offer(checked.topic, item.offer, item.message_id, outcome)
                return
            logger.error(
                "Storing a batch of %d offers failed %d times while the database responds; "
                "storing them one at a time, so only a bad one is rejected: %s",
                len(run),
                self._retry.poison_failures,
                result.error,
            )
        except Exception:
            # NOTE: a bug after part of the batch was stored makes those offers duplicates below.
            logger.exception(
                "Unexpected error while storing a batch of %d offers; storing them one at a time",
                len(run),
            )

        for checked in run:
            item = checked.item
            store = partial(
                self._store_offer,
                checked.topic,
                checked.payload,
                item.received_at,
                item.offer,
                item.message_id,
            )
            await self._guarded(checked.topic, checked.payload, store)

    async def _handle_withdrawal(self, topic: str, payload: bytes, received_at: datetime) -> None:
        try:
            withdrawal = validated_withdrawal(topic, payload)
        except INVALID_MESSAGE_ERRORS as error:
            await self._reject(topic, payload, str(error), received_at, invalid_reason(error))
            return
        if not await self._admitted(
            topic, payload, received_at, withdrawal.cluster, withdrawal.member
        ):
            return

        message_id = message_key(withdrawal.envelope, payload)
        outcome = await self._commit(
            topic,
            payload,
            received_at,
            lambda: self._storage.apply_withdrawal(withdrawal, received_at, message_id=message_id),
        )
        if outcome is None:
            return
        if outcome is WithdrawalOutcome.DUPLICATE:
            self._count_duplicate(topic, message_id)
            return
        self._status.accepted_withdrawals += 1
        if outcome is WithdrawalOutcome.STALE:
            self._status.stale_withdrawals += 1
            logger.info(
                "Ignored the withdrawal on %s made at %s: the stored offer or withdrawal is newer",
                topic,
                withdrawal.withdrawn_at.isoformat(),
            )
            return
        logger.info(
            "Applied the withdrawal on %s made at %s (reason %s): %s%s",
            topic,
            withdrawal.withdrawn_at.isoformat(),
            withdrawal.reason,
            "removed the current offer" if outcome is WithdrawalOutcome.REMOVED else "no offer",
            ", deleted its history" if withdrawal.delete_history else "",
        )

    async def _handle_status(self, topic: str, payload: bytes, received_at: datetime) -> None:
        try:
            status = validated_status(topic, payload)
        except INVALID_MESSAGE_ERRORS as error:
            await self._reject(topic, payload, str(error), received_at, invalid_reason(error))
            return
        if not await self._admitted(topic, payload, received_at, status.cluster, status.member):
            return

        message_id = message_key(None, payload)
        outcome = await self._commit(
            topic,
            payload,
            received_at,
            lambda: self._storage.store_status(status, received_at, message_id=message_id),
        )
        if outcome is None:
            return
        if outcome is StatusOutcome.DUPLICATE:
            self._count_duplicate(topic, message_id)
            return
        self._status.accepted_statuses += 1
        if outcome is StatusOutcome.STALE:
            self._status.stale_statuses += 1
            logger.info(
                "Ignored the %s status on %s of the connection made at %s: a newer status is "
                "stored",
                status.state,
                topic,
                status.connected_at.isoformat(),
            )
            return
        logger.info(
            "Member %s/%s is %s%s",
            status.cluster,
            status.member,
            status.state,
            f" ({status.reason})" if status.reason is not None else "",
        )

    async def _handle_answer(self, topic: str, payload: bytes, received_at: datetime) -> None:
        try:
            answer = validated_answer(topic, payload)
        except INVALID_MESSAGE_ERRORS as error:
            await self._reject(topic, payload, str(error), received_at, invalid_reason(error))
            return
        if not await self._admitted(topic, payload, received_at, answer.cluster, answer.member):
            return

        message_id = message_key(answer.envelope, payload)
        receipt = await self._commit(
            topic,
            payload,
            received_at,
            lambda: self._storage.store_answer(answer, received_at, message_id=message_id),
        )
        if receipt is None:
            return
        if receipt.outcome is None:
            self._count_duplicate(topic, message_id)
            return
        reason = answer_rejection(answer, receipt)
        if reason is not None:
            await self._reject(topic, payload, reason, received_at, RejectReason.ANSWER_UNMATCHED)
            return

        self._status.accepted_answers += 1
        _log_answer(topic, answer.request_id, answer.state, receipt.outcome)

    async def _clear(self, kind: str, topic: str, received_at: datetime) -> None:
        if kind != "offer":
            logger.debug("Ignored empty payload on %s (a cleared retained %s)", topic, kind)
            return
        try:
            cluster, member, resource = parse_offer_topic(topic)
        except TopicError as error:
            logger.debug("Ignored empty payload on %s: %s", topic, error)
            return
        if not await self._admitted(topic, b"", received_at, cluster, member):
            return

        removed = await self._commit(
            topic,
            b"",
            received_at,
            lambda: self._storage.remove_offer(cluster, member, resource),
        )
        if removed:
            self._status.cleared_offers += 1
            logger.info(
                "Removed the current offer of %s/%s/%s: its owner cleared the retained offer",
                cluster,
                member,
                resource,
            )

    async def _admitted(
        self, topic: str, payload: bytes, received_at: datetime, cluster: str, member: str
    ) -> bool:
        """Return whether ``cluster/member`` may send; reject the message when it may not."""
        reason = await self._retry_until_committed(
            lambda: self._registration.rejection_reason(cluster, member), give_up=True
        )
        if isinstance(reason, _GaveUp):
            await self._give_up(topic, payload, received_at, reason)
            return False
        if reason is not None:
            await self._reject(topic, payload, reason, received_at, RejectReason.NOT_REGISTERED)
            return False
        return True

    def _count_duplicate(self, topic: str, message_id: str) -> None:
        self._status.duplicate_messages += 1
        logger.debug("Ignored message %s on %s: it was stored before", message_id, topic)

    async def _reject(
        self, topic: str, payload: bytes, reason: str, received_at: datetime, code: RejectReason
    ) -> None:
        self._status.rejected_messages += 1
        self._status.rejected_by_reason[code] += 1
        logger.warning("Rejected message on %s (%d bytes): %s", topic, len(payload), reason)
        # NOTE: the rejection record has no poison rule. If it cannot be written while the
        # database responds, ingest stays paused on this message until writes work again.
        await self._retry_until_committed(
            lambda: self._storage.store_rejected(topic, payload, reason, received_at),
            give_up=False,
        )

    # Storage attempts

    async def _commit(
        self, topic: str, payload: bytes, received_at: datetime, operation: Callable[[], T]
    ) -> T | None:
        """Run ``operation`` until it succeeds; ``None`` when the message was rejected instead."""
        result = await self._retry_until_committed(operation, give_up=True)
        if isinstance(result, _GaveUp):
            await self._give_up(topic, payload, received_at, result)
            return None
        return result

    async def _give_up(
        self, topic: str, payload: bytes, received_at: datetime, gave_up: _GaveUp
    ) -> None:
        logger.error(
            "Storing the message on %s failed %d times while the database responds; "
            "rejecting it: %s",
            topic,
            self._retry.poison_failures,
            gave_up.error,
        )
        await self._reject(
            topic, payload, str(gave_up.error), received_at, RejectReason.STORAGE_FAILED
        )

    async def _retry_until_committed(
        self, operation: Callable[[], T], *, give_up: bool
    ) -> T | _GaveUp:
        failures = 0
        while True:
            try:
                result = await asyncio.to_thread(operation)
            except StorageError as error:
                failures += 1
                self._status.storage_retries += 1
                poisoned = give_up and failures >= self._retry.poison_failures
                if poisoned and await self._database_responds():
                    return _GaveUp(error)
                delay = self._retry.backoff.delay(failures - 1, self._rng.random())
                self._pause(error, delay)
                await self._sleep(delay)
            else:
                self._resume()
                return result

    async def _database_responds(self) -> bool:
        try:
            await asyncio.to_thread(self._storage.check_health)
        except StorageError:
            return False
        return True

    def _pause(self, error: StorageError, delay: float) -> None:
        if self._paused_since_failures == 0:
            logger.warning(
                "Storage failed, so ingest paused and retries with backoff, next attempt in "
                "%.1f s: %s",
                delay,
                error,
            )
            self._status.storage_paused = True
        self._paused_since_failures += 1

    def _resume(self) -> None:
        if self._paused_since_failures == 0:
            return
        logger.warning(
            "Storage works again, so ingest resumed after %d failed attempts",
            self._paused_since_failures,
        )
        self._paused_since_failures = 0
        self._status.storage_paused = False


def invalid_reason(error: Exception) -> RejectReason:
    """Return the reason code of a message that failed ``server.validation``."""
    if isinstance(error, TopicError):
        return RejectReason.INVALID_TOPIC
    if isinstance(error, TopicMismatchError):
        return RejectReason.TOPIC_MISMATCH
    if isinstance(error, PayloadTooLargeError):
        return RejectReason.TOO_LARGE
    return RejectReason.INVALID_PAYLOAD


def _log_answer(topic: str, request_id: str, state: str, outcome: AnswerOutcome) -> None:
    if outcome is AnswerOutcome.APPLIED:
        logger.info("Request %s is %s by the answer on %s", request_id, state, topic)
    elif outcome is AnswerOutcome.FINAL:
        logger.info(
            "Ignored the %s answer on %s: request %s is final already", state, topic, request_id
        )
    elif outcome is AnswerOutcome.STALE:
        logger.info(
            "Ignored the %s answer on %s: its seq is not above that of the last answer applied "
            "to request %s",
            state,
            topic,
            request_id,
        )
    else:
        logger.debug(
            "Request %s is %s already; ignored the repeated answer on %s", request_id, state, topic
        )
