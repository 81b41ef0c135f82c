"""The aggregator's MQTT subscription: a persistent session that acknowledges after storing.

``Subscriber`` connects with ``clean_start`` off, a session expiry and manual acknowledgement,
subscribes with QoS 1, and passes the messages to a handler in batches: each batch is every
message waiting at that moment, up to ``batch_limit``, so a lone message is handled at once. A
``BatchHandler`` (``Ingest``'s ``MessageHandler``) reports with its ``committed`` callback how
many messages of the batch have their effect or rejection committed, and the subscriber sends
their PUBACKs then, in the order of arrival as MQTT requires (MQTT 3.1.1 and 5.0, section 4.6).
A plain ``async (topic, payload)`` function is called once per message and its message is
acknowledged when it returns. A message received but not yet stored when the aggregator stops
or crashes therefore stays unacknowledged, and the broker sends it again on the next connection
of the same client id. Storage drops the repeat by its message id.

The broker sends at most its in-flight window of unacknowledged messages (MQTT 5: the Receive
Maximum the session announces; MQTT 3.1.1: Mosquitto's ``max_inflight_messages``, 20 by
default), so a batch is never larger than that window.

With a shared group every filter becomes ``$share/{group}/{filter}``, and the broker hands each
message to one of the group's sessions. Those sessions need distinct client ids.

A dropped or refused connection is retried with bounded backoff: logged at WARNING once when
lost (with the delay), and at INFO once when restored. A broker that rejects the credentials or a
subscription needs the operator, so that is logged at ERROR once and retried at the maximum
delay, because the operator may fix the broker's password or ACL file while kooperant runs.
Invalid TLS files end ``run`` with ``InvalidSettingError``. With a ``fallback_protocol``, a
broker that does not accept MQTT 5 (it rejects the version or sends no CONNACK in time) is
connected to with MQTT 3.1.1 from then on, as the agent does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from enum import Enum
from typing import Any, Literal, Protocol, runtime_checkable

from kooperant.backoff import Backoff, BackoffPolicy
from kooperant.mqtt import (
    ConnectionLost,
    ConnectOptions,
    MqttError,
    MqttSession,
    NotAuthorized,
    ProtocolNotAccepted,
    ReceivedMessage,
    SubscribeRejected,
    TlsSettingsError,
)
from kooperant.protocol import shared_subscription
from server.errors import InvalidSettingError
from server.status import ServerStatus

logger = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], Awaitable[None]]


@runtime_checkable
class BatchHandler(Protocol):
    """Handles a batch of messages in order and reports each committed prefix."""

    async def handle_batch(
        self, messages: Sequence[ReceivedMessage], committed: Callable[[int], None]
    ) -> None:
        """Handle ``messages``; call ``committed(n)`` once ``messages[:n]`` are committed."""


# The largest batch passed to the handler. The broker's in-flight window may keep batches smaller.
DEFAULT_BATCH_LIMIT = 500

DEFAULT_CLIENT_ID = "kooperant-aggregator"
# How long a stop waits for the message being stored. After that the handler is cancelled and the
# message stays unacknowledged. This is below the 5 s that ``server.service`` gives every part.
STOP_GRACE_SECONDS = 3.0


def default_client_id(cluster: str | None) -> str:
    """Return ``kooperant-aggregator``, with ``-{cluster}`` appended when a cluster is set."""
    return DEFAULT_CLIENT_ID if cluster is None else f"{DEFAULT_CLIENT_ID}-{cluster}"


def shared_filters(topic_filters: Sequence[str], shared_group: str | None) -> list[str]:
    """Return ``topic_filters`` as shared subscriptions of ``shared_group``, when it is set."""
    if shared_group is None:
        return list(topic_filters)
    return [shared_subscription(shared_group, topic_filter) for topic_filter in topic_filters]


class _Failure(Enum):
    """The kind of a failed connection: one to retry, or one that needs the operator first."""

    UNREACHABLE = "unreachable"
    NOT_AUTHORIZED = "not authorized"
    SUBSCRIBE_REJECTED = "subscribe rejected"

    @classmethod
    def of(cls, error: MqttError) -> _Failure:
        if isinstance(error, NotAuthorized):
            return cls.NOT_AUTHORIZED
        if isinstance(error, SubscribeRejected):
            return cls.SUBSCRIBE_REJECTED
        return cls.UNREACHABLE


def fallback_options(
    options: ConnectOptions,
    fallback: Literal["3.1.1"] | None,
    error: ProtocolNotAccepted,
    broker_url: str,
    client: str,
) -> ConnectOptions | None:
    """Return ``options`` with the fall-back MQTT version, or ``None`` when none is left.

    Logs the switch at WARNING once, naming ``client`` (``ingest``, ``the request router``).
    """
    if fallback is None or options.protocol == fallback:
        return None
    logger.warning(
        "MQTT broker %s did not accept MQTT %s (%s), so %s connects with MQTT %s until the "
        "server restarts",
        broker_url,
        options.protocol,
        error,
        client,
        fallback,
    )
    return replace(options, protocol=fallback)


class Subscriber:
    """Receives messages over one persistent MQTT session until ``run``'s ``stop`` is set."""

    def __init__(
        self,
        options: ConnectOptions,
        topic_filters: Sequence[str],
        handler: MessageHandler | BatchHandler,
        status: ServerStatus,
        *,
        reconnect: BackoffPolicy,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        fallback_protocol: Literal["3.1.1"] | None = None,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
    ) -> None:
        if batch_limit < 1:
            raise ValueError(f"batch_limit must be at least 1, got {batch_limit}")
        self._options = options
        self._fallback_protocol = fallback_protocol
        self._filters = list(topic_filters)
        self._handler: BatchHandler = (
            handler if isinstance(handler, BatchHandler) else _OneAtATime(handler)
        )
        self._batch_limit = batch_limit
        self._status = status
        self._reconnect = reconnect
        self._clock = clock
        self._backoff = Backoff(reconnect, (rng or random.Random()).random)
        # The kind of failure already logged for the current outage, so each is logged once.
        self._logged_failure: _Failure | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, subscribe and hand messages to the handler until ``stop`` is set.

        Raises ``InvalidSettingError`` when the TLS files cannot be used.
        """
        while not stop.is_set():
            try:
                await self._connect_and_receive(stop)
            except TlsSettingsError as error:
                self._mark_disconnected(error)
                raise InvalidSettingError("broker_tls_invalid", detail=str(error)) from error
            except ProtocolNotAccepted as error:
                if not self._fall_back(error):
                    await self._wait_after(error, stop)
            except MqttError as error:
                await self._wait_after(error, stop)
        self._status.broker_connected = False
        self._status.broker_connected_since = None

    async def _wait_after(self, error: MqttError, stop: asyncio.Event) -> None:
        """Record and log a failed connection, then wait the backoff delay or until a stop."""
        self._mark_disconnected(error)
        delay = self._delay_after(error)
        self._log_failure(error, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    def _fall_back(self, error: ProtocolNotAccepted) -> bool:
        """Switch to the fall-back MQTT version for the rest of the run, if there is one left."""
        options = fallback_options(
            self._options, self._fallback_protocol, error, self._status.broker_url, "ingest"
        )
        if options is None:
            return False
        self._options = options
        return True

    async def _connect_and_receive(self, stop: asyncio.Event) -> None:
        async with MqttSession(self._options) as session:
            await session.subscribe(self._filters, qos=1)
            self._mark_connected(session.session_present)
            self._backoff.reset()
            await self._receive(session, stop)

    async def _receive(self, session: MqttSession, stop: asyncio.Event) -> None:
        """Handle batches of messages, in the order received, until ``stop`` is set."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                batch = await _next_batch(session, self._batch_limit, stopping)
                if batch is None or not await self._handle(session, batch, stopping):
                    return
        finally:
            await _cancel(stopping)

    async def _handle(
        self, session: MqttSession, batch: list[ReceivedMessage], stopping: asyncio.Future[Any]
    ) -> bool:
        """Run the handler on ``batch``, acknowledging each committed message.

        Returns False if a stop cancelled the handler before the whole batch was committed.
        """
        acknowledged = 0

        def committed(count: int) -> None:
            nonlocal acknowledged
            for message in batch[acknowledged:count]:
                session.ack(message)
            acknowledged = max(acknowledged, count)

        handling: asyncio.Future[Any] = asyncio.ensure_future(
            self._handler.handle_batch(batch, committed)
        )
        try:
            await asyncio.wait([handling, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not handling.done():
                await asyncio.wait([handling], timeout=STOP_GRACE_SECONDS)
        finally:
            if not handling.done():
                await _cancel(handling)
        if handling.cancelled():
            waiting = batch[acknowledged:]
            logger.warning(
                "Stopped before %d received messages were stored (the first on %s), so each "
                "stays unacknowledged and the broker sends it again on the next connection",
                len(waiting),
                waiting[0].topic if waiting else "-",
            )
            return False
        handling.result()
        committed(len(batch))
        return True

    def _delay_after(self, error: MqttError) -> float:
        if _Failure.of(error) is not _Failure.UNREACHABLE:
            return self._reconnect.maximum
        return self._backoff.next_delay()

    def _log_failure(self, error: MqttError, delay: float) -> None:
        kind = _Failure.of(error)
        if kind is self._logged_failure:
            logger.debug(
                "Connecting to MQTT broker %s failed again: %s", self._status.broker_url, error
            )
            return

        self._logged_failure = kind
        if kind is _Failure.NOT_AUTHORIZED:
            logger.error(
                "%s. Check --broker-username and --broker-password-file, and the broker's "
                "password file and ACL; retrying every %.0f s",
                error,
                delay,
            )
        elif kind is _Failure.SUBSCRIBE_REJECTED:
            user = self._options.username
            logger.error(
                "%s (client %r%s). Let this client read %s in the broker's ACL; "
                "retrying every %.0f s",
                error,
                self._options.client_id,
                "" if user is None else f", user {user!r}",
                ", ".join(self._filters),
                delay,
            )
        else:
            logger.warning(
                "Connection to MQTT broker %s lost or refused (%s); "
                "retrying with backoff, next attempt in %.1f s",
                self._status.broker_url,
                error,
                delay,
            )

    def _mark_connected(self, session_present: bool) -> None:
        restored = self._logged_failure is not None
        self._logged_failure = None
        self._status.broker_connected = True
        self._status.broker_error = None
        self._status.broker_connected_since = self._clock()
        self._status.broker_session_present = session_present

        if restored:
            logger.info("Connection to MQTT broker %s restored", self._status.broker_url)
        else:
            logger.info(
                "Connected to MQTT broker %s as client %s, subscribed to %s",
                self._status.broker_url,
                self._options.client_id,
                ", ".join(self._filters),
            )
        if not session_present:
            # Retained offers still arrive with the subscription, unless it is a shared one.
            logger.info(
                "MQTT broker %s had no session for client %s (first start, or the session "
                "expired or was lost): messages published while it was away arrive only if "
                "they were retained",
                self._status.broker_url,
                self._options.client_id,
            )

    def _mark_disconnected(self, error: MqttError) -> None:
        self._status.broker_connected = False
        self._status.broker_error = str(error)
        self._status.broker_connected_since = None


class _OneAtATime:
    """A ``BatchHandler`` that awaits a ``MessageHandler`` on each message in turn."""

    def __init__(self, handler: MessageHandler) -> None:
        self._handler = handler

    async def handle_batch(
        self, messages: Sequence[ReceivedMessage], committed: Callable[[int], None]
    ) -> None:
        for number, message in enumerate(messages, start=1):
            await self._handler(message.topic, message.payload)
            committed(number)


async def _next_batch(
    session: MqttSession, limit: int, stopping: asyncio.Future[Any]
) -> list[ReceivedMessage] | None:
    """Return the messages waiting now (at least one), or None once ``stopping`` is done first."""
    receiving: asyncio.Future[list[ReceivedMessage]] = asyncio.ensure_future(
        session.receive_batch(limit)
    )
    try:
        waiters: list[asyncio.Future[Any]] = [receiving, stopping]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not receiving.done():
            await _cancel(receiving)
    if receiving.cancelled():
        return None
    batch = receiving.result()
    if not batch:
        raise ConnectionLost("the MQTT session stopped delivering messages")
    return batch


async def _cancel(future: asyncio.Future[Any]) -> None:
    future.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await future
