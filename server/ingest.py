"""Ingest: receive offers, withdrawals, member status and answers from the broker; store them.

Ingest subscribes to the offer, withdrawal, status and answer topics of its cluster (or of every
cluster) and passes the messages waiting at each moment, up to ``batch_limit``, to
``MessageHandler.handle_batch`` (``server.message_handling``). It checks and stores them,
retrying while the storage fails, and reports which are committed, so the subscriber
acknowledges each after its effect. A message that fails a check is kept in
``rejected_messages``; ingest then goes on with the next one. The checks and the storage calls
are synchronous, so they run in a worker thread to keep the event loop (which also serves
HTTP) responsive.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import ConnectOptions, TlsSettings
from server.message_handling import MessageHandler, StorageRetry
from server.mqtt_url import BrokerAddress
from server.settings import DEFAULT_RECONNECT, DEFAULT_SESSION_EXPIRY_SECONDS, MqttProtocolChoice
from server.status import ServerStatus
from server.storage import Storage
from server.subscriber import (
    DEFAULT_BATCH_LIMIT,
    Subscriber,
    default_client_id,
    shared_filters,
)

logger = logging.getLogger(__name__)

# Twice this is the MQTT 5 Receive Maximum, whose largest value is 65,535.
MAX_BATCH_LIMIT = 32_767


@dataclass(frozen=True)
class IngestSettings:
    """Broker address, credentials, session and cluster of ingest.

    ``client_id=None`` means ``kooperant-aggregator[-{cluster}]``. ``shared_group`` turns every
    subscription into a shared one of that group. ``tls`` applies to an ``mqtts://`` broker only,
    which without it is verified against the system's CA certificates. ``protocol="auto"``
    connects with MQTT 5 and falls back to 3.1.1 when the broker does not accept 5.
    ``batch_limit`` is the largest batch of messages handled together; the MQTT 5 session asks
    the broker for twice as many unacknowledged messages, so the next batch arrives while one is
    stored. The repr leaves out ``password``.
    """

    broker: BrokerAddress
    cluster: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    reconnect: BackoffPolicy = DEFAULT_RECONNECT
    keepalive_seconds: int = 30
    client_id: str | None = None
    shared_group: str | None = None
    session_expiry_seconds: int = DEFAULT_SESSION_EXPIRY_SECONDS
    protocol: MqttProtocolChoice = "auto"
    tls: TlsSettings | None = None
    batch_limit: int = DEFAULT_BATCH_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.batch_limit <= MAX_BATCH_LIMIT:
            raise ValueError(
                f"invalid ingest batch limit {self.batch_limit}: expected 1 to {MAX_BATCH_LIMIT}"
            )


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
        """Receive and store messages until ``stop`` is set, reconnecting after a lost connection.

        Each message is acknowledged to the broker only after its effect or rejection is
        committed (see ``server.subscriber``).
        """
        settings = self._settings
        subscriber = Subscriber(
            _connect_options(settings),
            shared_filters(self.topic_filters, settings.shared_group),
            self._handler,
            self._status,
            reconnect=settings.reconnect,
            clock=self._clock,
            rng=self._rng,
            fallback_protocol="3.1.1" if settings.protocol == "auto" else None,
            batch_limit=settings.batch_limit,
        )
        await subscriber.run(stop)

    @property
    def topic_filters(self) -> tuple[str, ...]:
        """The offer, withdrawal, status and answer filters ingest subscribes to."""
        return self._handler.topic_filters

    async def handle_message(self, topic: str, payload: bytes) -> None:
        """Check and store one message; return once its effect or rejection is committed.

        ``server.message_handling`` describes the checks and the retries. Raises nothing but
        ``CancelledError``.
        """
        await self._handler.handle(topic, payload)


def _connect_options(settings: IngestSettings) -> ConnectOptions:
    """Return the options of a persistent session with manual acknowledgement."""
    broker = settings.broker
    tls = settings.tls
    if broker.tls and tls is None:
        tls = TlsSettings()
    return ConnectOptions(
        host=broker.host,
        port=broker.port,
        client_id=settings.client_id or default_client_id(settings.cluster),
        username=settings.username,
        password=settings.password,
        tls=tls if broker.tls else None,
        protocol="5" if settings.protocol == "auto" else settings.protocol,
        clean_start=False,
        session_expiry_seconds=settings.session_expiry_seconds,
        keepalive_seconds=settings.keepalive_seconds,
        manual_ack=True,
        receive_maximum=2 * settings.batch_limit,
    )
