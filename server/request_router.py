"""Routing of capacity requests to the owners' agents over MQTT.

``RequestRouter`` runs in ``kooperant server run`` only, never in ``kooperant server ingest``, so
exactly one process publishes requests. It reads the database about once a second (and at once
when its ``wakeup`` event is set) and, over a session of its own:

- publishes each open request whose ``routing`` is NULL as ``kooperant.request/1.0``, QoS 1 and
  retained, on ``kooperant/v1/{cluster}/{member}/requests/{request_id}``, and records it as
  ``published`` after the PUBACK;
- clears the topic of each final request that is ``published`` with an empty retained payload,
  and records it as ``cleared`` after the PUBACK. A final request that was never published is
  recorded as ``cleared`` without a message.

The database is the queue: while the broker is down nothing is sent, and every waiting request
goes out once it is back. A PUBACK with a failure reason (an ACL that denies the topic, say) is
logged at ERROR with the topic and reason once, and that topic is tried again with backoff.
MQTT 3.1.1 has no reason code in a PUBACK, so there a broker that drops a denied message still
acknowledges it, and the request is recorded as published.

The connection uses the broker, credentials, TLS and MQTT version fall-back of ingest, with the
client id of ingest and ``-router`` appended. As in ``server.subscriber``, it reconnects with
bounded backoff and logs a WARNING once when the connection is lost, an INFO once when it is
restored, and an ERROR once for rejected credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kooperant.backoff import Backoff, BackoffPolicy
from kooperant.mqtt import (
    ConnectOptions,
    MqttError,
    MqttSession,
    NotAuthorized,
    ProtocolNotAccepted,
    PublishRejected,
    TlsSettings,
    TlsSettingsError,
)
from kooperant.protocol.request import CapacityRequest
from kooperant.protocol.topics import request_topic
from server.errors import InvalidSettingError, StorageError
from server.ingest import IngestSettings
from server.storage import Storage
from server.storage.request_routing import Routing, RoutingWork
from server.subscriber import default_client_id, fallback_options

logger = logging.getLogger(__name__)

ROUTER_CLIENT_ID_SUFFIX = "-router"
DEFAULT_POLL_SECONDS = 1.0
# The maximum of requests of each kind (to publish, to clear) read per pass.
BATCH_SIZE = 100
# Delays before the broker gets another try at a topic whose PUBACK carried a failure reason.
DEFAULT_REJECTED_BACKOFF = BackoffPolicy(minimum=5.0, maximum=300.0)


@dataclass
class _Rejection:
    attempts: int
    retry_at: float
    """``monotonic`` time from which the request's topic may be tried again."""


class RequestRouter:
    """Publishes and clears the retained request messages until ``run``'s ``stop`` is set.

    ``monotonic`` measures the backoff after a rejected publish, and ``rng`` picks the jitter;
    tests pass controlled ones. Setting ``wakeup`` starts a pass at once, for example after the
    API created or withdrew a request.
    """

    def __init__(
        self,
        storage: Storage,
        settings: IngestSettings,
        *,
        wakeup: asyncio.Event | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        rejected_backoff: BackoffPolicy = DEFAULT_REJECTED_BACKOFF,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._storage = storage
        self._cluster = settings.cluster
        self._options = router_connect_options(settings)
        self._fallback_protocol: Literal["3.1.1"] | None = (
            "3.1.1" if settings.protocol == "auto" else None
        )
        self._broker_url = settings.broker.url
        self._reconnect = settings.reconnect
        self._rng = rng or random.Random()
        self._backoff = Backoff(settings.reconnect, self._rng.random)
        self.wakeup = wakeup or asyncio.Event()
        self._poll_seconds = poll_seconds
        self._rejected_backoff = rejected_backoff
        self._monotonic = monotonic
        self._rejections: dict[str, _Rejection] = {}
        # Routing changes the broker acknowledged but the database did not record yet.
        self._unrecorded: dict[str, Callable[[str], bool]] = {}
        self._connection_failure: type[MqttError] | None = None
        self._storage_failed = False
        self.published_requests = 0
        """Requests published to their owner's topic in this run."""
        self.cleared_requests = 0
        """Topics of final requests cleared in this run."""

    async def run(self, stop: asyncio.Event) -> None:
        """Connect and route requests until ``stop`` is set, reconnecting with backoff.

        Raises ``InvalidSettingError`` when the TLS files cannot be used.
        """
        while not stop.is_set():
            try:
                async with MqttSession(self._options) as session:
                    self._mark_connected()
                    await self._route_until_stopped(session, stop)
            except TlsSettingsError as error:
                raise InvalidSettingError("broker_tls_invalid", detail=str(error)) from error
            except ProtocolNotAccepted as error:
                if not self._fall_back(error):
                    await self._wait_after(error, stop)
            except MqttError as error:
                await self._wait_after(error, stop)

    async def route_once(self, session: MqttSession) -> bool:
        """Publish and clear the request topics that need it now; return if a batch was full.

        Raises ``MqttError`` (other than ``PublishRejected``) when the connection fails.
        """
        await self._record_unrecorded()
        waiting = self._waiting_for_retry()
        try:
            work = await asyncio.to_thread(
                self._storage.routing_work,
                cluster=self._cluster,
                limit=BATCH_SIZE,
                skipped=waiting,
            )
        except StorageError as error:
            self._log_storage_failure(error)
            return False
        self._log_storage_restored()
        self._forget_rejections(work, waiting)

        sent = 0
        for request in work.to_publish:
            if await self._send(session, request, request.to_payload(), Routing.PUBLISHED):
                sent += 1
        for request in work.to_clear:
            if await self._send(session, request, b"", Routing.CLEARED):
                sent += 1
        return sent > 0 and BATCH_SIZE in (len(work.to_publish), len(work.to_clear))

    async def _route_until_stopped(self, session: MqttSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before the pass, so a wakeup set during the pass starts another one.
            self.wakeup.clear()
            if not await self.route_once(session):
                await self._wait_for_pass(stop)

    async def _wait_for_pass(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wakeup.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=self._poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    # Publishing

    async def _send(
        self, session: MqttSession, request: CapacityRequest, payload: bytes, routing: Routing
    ) -> bool:
        """Publish ``payload`` retained on the request's topic and record ``routing``."""
        topic = request_topic(request.cluster, request.member, request.request_id)
        try:
            await session.publish(topic, payload, qos=1, retain=True)
        except PublishRejected as error:
            self._reject(request.request_id, topic, error)
            return False
        rejection = self._rejections.pop(request.request_id, None)
        if rejection is not None:
            logger.info(
                "MQTT broker accepted the message on %s after %d rejections",
                topic,
                rejection.attempts,
            )

        if routing is Routing.PUBLISHED:
            self.published_requests += 1
            logger.info("Sent request %s to member %s", request.request_id, request.member)
            mark = self._storage.mark_request_published
        else:
            self.cleared_requests += 1
            logger.info("Cleared the topic of request %s (final)", request.request_id)
            mark = self._storage.mark_request_cleared
        self._unrecorded[request.request_id] = mark
        await self._record_unrecorded()
        return True

    def _waiting_for_retry(self) -> frozenset[str]:
        """Return the ids of the requests whose topic the broker rejected, within their delay."""
        now = self._monotonic()
        return frozenset(
            request_id
            for request_id, rejection in self._rejections.items()
            if now < rejection.retry_at
        )

    def _forget_rejections(self, work: RoutingWork, waiting: frozenset[str]) -> None:
        """Forget the rejections of requests that need no message any more, such as withdrawn."""
        needed = {request.request_id for request in (*work.to_publish, *work.to_clear)}
        for request_id in list(self._rejections):
            if request_id not in waiting and request_id not in needed:
                del self._rejections[request_id]

    def _reject(self, request_id: str, topic: str, error: PublishRejected) -> None:
        previous = self._rejections.get(request_id)
        attempts = 1 if previous is None else previous.attempts + 1
        delay = self._rejected_backoff.delay(attempts - 1, self._rng.random())
        self._rejections[request_id] = _Rejection(attempts, self._monotonic() + delay)
        if previous is None:
            logger.error(
                "MQTT broker rejected the request message on %s: %s. Let the aggregator's user "
                "write %s in the broker's ACL; retrying with backoff, next attempt in %.0f s",
                topic,
                error.reason,
                topic,
                delay,
            )
        else:
            logger.debug(
                "MQTT broker rejected the message on %s again (%d times): %s",
                topic,
                attempts,
                error.reason,
            )

    async def _record_unrecorded(self) -> None:
        """Record the routing changes the broker acknowledged, keeping those that failed."""
        for request_id, mark in list(self._unrecorded.items()):
            try:
                await asyncio.to_thread(mark, request_id)
            except StorageError as error:
                # NOTE: if the server stops before this succeeds, the next run sends the request
                # again, and a request that became final meanwhile keeps its retained message.
                self._log_storage_failure(error)
                return
            del self._unrecorded[request_id]

    # Logging of failures

    def _log_storage_failure(self, error: StorageError) -> None:
        if self._storage_failed:
            logger.debug("Reading requests to route failed again: %s", error)
            return
        self._storage_failed = True
        logger.warning(
            "Storage failed, so routing of requests waits and tries again every %.1f s: %s",
            self._poll_seconds,
            error,
        )

    def _log_storage_restored(self) -> None:
        if self._storage_failed:
            self._storage_failed = False
            logger.warning("Storage works again, so routing of requests resumed")

    async def _wait_after(self, error: MqttError, stop: asyncio.Event) -> None:
        if isinstance(error, NotAuthorized):
            delay = self._reconnect.maximum
        else:
            delay = self._backoff.next_delay()
        self._log_connection_failure(error, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    def _log_connection_failure(self, error: MqttError, delay: float) -> None:
        kind = NotAuthorized if isinstance(error, NotAuthorized) else MqttError
        if kind is self._connection_failure:
            logger.debug(
                "Request router: connecting to %s failed again: %s", self._broker_url, error
            )
            return
        self._connection_failure = kind
        if kind is NotAuthorized:
            logger.error(
                "%s. Request router: check --broker-username and --broker-password-file, and "
                "the broker's password file; retrying every %.0f s",
                error,
                delay,
            )
        else:
            logger.warning(
                "Request router: connection to MQTT broker %s lost or refused (%s); requests "
                "wait in the database, next attempt in %.1f s",
                self._broker_url,
                error,
                delay,
            )

    def _mark_connected(self) -> None:
        self._backoff.reset()
        if self._connection_failure is not None:
            logger.info("Request router: connection to MQTT broker %s restored", self._broker_url)
        else:
            logger.info(
                "Request router connected to MQTT broker %s as client %s",
                self._broker_url,
                self._options.client_id,
            )
        self._connection_failure = None

    def _fall_back(self, error: ProtocolNotAccepted) -> bool:
        options = fallback_options(
            self._options, self._fallback_protocol, error, self._broker_url, "the request router"
        )
        if options is None:
            return False
        self._options = options
        return True


def router_connect_options(settings: IngestSettings) -> ConnectOptions:
    """Return the router's options: those of ingest, but a clean session of its own client id.

    The router subscribes to nothing, so it needs no kept session.
    """
    broker = settings.broker
    tls = settings.tls
    if broker.tls and tls is None:
        tls = TlsSettings()
    client_id = settings.client_id or default_client_id(settings.cluster)
    return ConnectOptions(
        host=broker.host,
        port=broker.port,
        client_id=f"{client_id}{ROUTER_CLIENT_ID_SUFFIX}",
        username=settings.username,
        password=settings.password,
        tls=tls if broker.tls else None,
        protocol="5" if settings.protocol == "auto" else settings.protocol,
        keepalive_seconds=settings.keepalive_seconds,
    )
