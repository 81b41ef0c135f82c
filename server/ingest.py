"""Ingest: receive offers, withdrawals and member status from the MQTT broker and store them.

Ingest subscribes to the offer, withdrawal and status topics of its cluster (or of every
cluster) and passes each message to ``Ingest.handle_message``. ``server.message_handling``
checks and stores it, retrying while the storage fails, and returns once the effect is
committed. A message that fails a check is kept in ``rejected_messages``; ingest then goes on
with the next one. Storage calls are synchronous, so they run in a worker thread to keep the
event loop (which also serves HTTP) responsive.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt

from kooperant.backoff import BackoffPolicy
from kooperant.protocol import offer_subscription, withdrawal_subscription
from server.message_handling import MessageHandler, StorageRetry
from server.mqtt_url import BrokerAddress
from server.status import ServerStatus
from server.storage import Storage

logger = logging.getLogger(__name__)


# Reconnect delays of ingest unless ``IngestSettings`` or ``ServerSettings`` set others.
DEFAULT_RECONNECT = BackoffPolicy(minimum=0.5, maximum=30.0)


@dataclass(frozen=True)
class IngestSettings:
    """Broker address, credentials and cluster of ingest. The repr leaves out ``password``."""

    broker: BrokerAddress
    cluster: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    reconnect: BackoffPolicy = DEFAULT_RECONNECT
    keepalive_seconds: int = 30


class Ingest:
    """The MQTT subscriber that feeds ``Storage``; ``run`` returns when ``stop`` is set."""

    def __init__(
        self,
        storage: Storage,
        status: ServerStatus,
        settings: IngestSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        storage_retry: StorageRetry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._storage = storage
        self._status = status
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._offer_filter = offer_subscription(settings.cluster)
        self._withdrawal_filter = withdrawal_subscription(settings.cluster)
        self._handler = MessageHandler(
            storage,
            status,
            cluster=settings.cluster,
            clock=clock,
            retry=storage_retry,
            sleep=sleep,
            rng=self._rng,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and store offers until ``stop`` is set, reconnecting after a lost connection."""
        receiver = asyncio.create_task(self._receive_forever(), name="ingest")
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([receiver, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            receiver.cancel()
            await asyncio.gather(receiver, stopper, return_exceptions=True)
        if not receiver.cancelled():
            receiver.result()  # re-raises an unexpected error that ended the receiver

    async def _receive_forever(self) -> None:
        attempt = 0
        lost_logged = False
        while True:
            try:
                async with self._client() as client:
                    await client.subscribe(self._offer_filter, qos=1)
                    await client.subscribe(self._withdrawal_filter, qos=1)
                    self._mark_connected(restored=lost_logged)
                    attempt = 0
                    lost_logged = False
                    async for message in client.messages:
                        await self.handle_message(str(message.topic), _payload_bytes(message))
            except aiomqtt.MqttError as error:
                delay = self._settings.reconnect.delay(attempt, self._rng.random())
                self._mark_disconnected(error)
                if not lost_logged:
                    logger.warning(
                        "Connection to MQTT broker %s lost or refused (%s); "
                        "retrying with backoff, next attempt in %.1f s",
                        self._status.broker_url,
                        error,
                        delay,
                    )
                    lost_logged = True
                else:
                    logger.debug(
                        "Reconnect attempt %d to %s failed: %s",
                        attempt,
                        self._status.broker_url,
                        error,
                    )
                attempt += 1
                await asyncio.sleep(delay)

    def _client(self) -> aiomqtt.Client:
        settings = self._settings
        return aiomqtt.Client(
            settings.broker.host,
            settings.broker.port,
            username=settings.username,
            password=settings.password,
            keepalive=settings.keepalive_seconds,
        )

    def _mark_connected(self, *, restored: bool) -> None:
        self._status.broker_connected = True
        self._status.broker_error = None
        self._status.broker_connected_since = self._clock()
        if restored:
            logger.warning("Connection to MQTT broker %s restored", self._status.broker_url)
        else:
            logger.info(
                "Connected to MQTT broker %s, subscribed to %s and %s",
                self._status.broker_url,
                self._offer_filter,
                self._withdrawal_filter,
            )

    def _mark_disconnected(self, error: aiomqtt.MqttError) -> None:
        self._status.broker_connected = False
        self._status.broker_error = str(error)
        self._status.broker_connected_since = None

    @property
    def topic_filters(self) -> tuple[str, ...]:
        """The offer, withdrawal and status filters ingest subscribes to."""
        return self._handler.topic_filters

    async def handle_message(self, topic: str, payload: bytes) -> None:
        """Check and store one message; return once its effect or rejection is committed.

        ``server.message_handling`` describes the checks and the retries. Raises nothing but
        ``CancelledError``.
        """
        await self._handler.handle(topic, payload)


def _payload_bytes(message: aiomqtt.Message) -> bytes:
    payload = message.payload
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return str(payload).encode("utf-8")
