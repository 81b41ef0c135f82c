"""Ingest: receive offers and withdrawals from the MQTT broker, validate them and store them.

Ingest subscribes to the offer and the withdrawal topics of its cluster (or of every cluster).
Each message is checked by ``server.validation``: topic layout, payload, and a payload whose
cluster, member and resource equal the topic's. A message that fails is logged at WARNING with
its topic and reason and kept in ``rejected_messages``; ingest then goes on with the next one.
A valid withdrawal removes the current offer unless that offer is newer. An empty payload on an
offer topic means that the owner cleared its retained offer, so the current offer goes too. An
empty payload on a withdrawal topic is a cleared retained withdrawal and changes nothing.
A message whose topic does not match the subscription filters is only counted in
``dropped_messages`` and logged at DEBUG. The broker is not trusted to filter: on connect, the
embedded amqtt 0.12 broker also sends the retained messages that match other clients' filters,
such as another cluster's offers.
Storage calls are synchronous, so they run in a worker thread to keep the event loop (which also
serves HTTP) responsive.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import aiomqtt

from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import ConnectOptions, TlsSettings
from kooperant.protocol import (
    MAX_PAYLOAD_BYTES,
    OfferValidationError,
    TopicError,
    offer_subscription,
    parse_offer_topic,
    withdrawal_subscription,
)
from server.errors import StorageError
from server.mqtt_url import BrokerAddress
from server.settings import (
    DEFAULT_RECONNECT,
    DEFAULT_SESSION_EXPIRY_SECONDS,
    MqttProtocol,
)
from server.status import ServerStatus
from server.storage import OfferOutcome, Storage, WithdrawalOutcome
from server.subscriber import Subscriber, default_client_id, subscription_filters
from server.validation import TopicMismatchError, validated_offer, validated_withdrawal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSettings:
    """Broker address, credentials, session and cluster of ingest.

    ``client_id=None`` means ``kooperant-aggregator[-{cluster}]``. ``shared_group`` turns every
    subscription into a shared one of that group. ``tls`` applies to an ``mqtts://`` broker only,
    which without it is verified against the system's CA certificates. The repr leaves out
    ``password``.
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
    protocol: MqttProtocol = "5"
    tls: TlsSettings | None = None
    max_payload_bytes: int = MAX_PAYLOAD_BYTES


T = TypeVar("T")


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
    ) -> None:
        self._storage = storage
        self._status = status
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._offer_filter = offer_subscription(settings.cluster)
        self._withdrawal_filter = withdrawal_subscription(settings.cluster)

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and store messages until ``stop`` is set, reconnecting after a lost connection.

        Each message is acknowledged to the broker only after ``handle_message`` returned
        (see ``server.subscriber``).
        """
        settings = self._settings
        subscriber = Subscriber(
            _connect_options(settings),
            subscription_filters(settings.cluster, settings.shared_group),
            self.handle_message,
            self._status,
            reconnect=settings.reconnect,
            clock=self._clock,
            rng=self._rng,
        )
        await subscriber.run(stop)

    async def handle_message(self, topic: str, payload: bytes) -> None:
        """Validate and apply one message; reject it with a reason instead of raising."""
        if _matches(topic, self._offer_filter):
            await self._handle_offer(topic, payload)
        elif _matches(topic, self._withdrawal_filter):
            await self._handle_withdrawal(topic, payload)
        else:
            self._status.dropped_messages += 1
            logger.debug(
                "Dropped message on %s: outside the subscriptions %s and %s",
                topic,
                self._offer_filter,
                self._withdrawal_filter,
            )

    async def _handle_offer(self, topic: str, payload: bytes) -> None:
        if not payload:
            await self._clear_offer(topic)
            return

        received_at = self._clock()
        try:
            offer = validated_offer(topic, payload)
        except (TopicError, OfferValidationError, TopicMismatchError) as error:
            await self._reject(topic, payload, str(error), received_at)
            return

        outcome = await self._store(topic, self._storage.store_offer, offer, received_at)
        if outcome is None:
            return
        self._status.accepted_offers += 1
        if outcome is OfferOutcome.CURRENT:
            logger.debug("Stored offer from %s generated at %s", topic, offer.generated_at)

    async def _clear_offer(self, topic: str) -> None:
        try:
            cluster, member, resource = parse_offer_topic(topic)
        except TopicError as error:
            logger.debug("Ignored empty payload on %s: %s", topic, error)
            return

        removed = await self._store(topic, self._storage.remove_offer, cluster, member, resource)
        if removed:
            self._status.cleared_offers += 1
            logger.info(
                "Removed the current offer of %s/%s/%s: its owner cleared the retained offer",
                cluster,
                member,
                resource,
            )

    async def _handle_withdrawal(self, topic: str, payload: bytes) -> None:
        if not payload:
            logger.debug("Ignored empty payload on %s (a cleared retained withdrawal)", topic)
            return

        received_at = self._clock()
        try:
            withdrawal = validated_withdrawal(topic, payload)
        except (TopicError, OfferValidationError, TopicMismatchError) as error:
            await self._reject(topic, payload, str(error), received_at)
            return

        outcome = await self._store(topic, self._storage.apply_withdrawal, withdrawal, received_at)
        if outcome is None:
            return
        self._status.accepted_withdrawals += 1
        if outcome is WithdrawalOutcome.STALE:
            self._status.stale_withdrawals += 1
            logger.info(
                "Ignored the withdrawal on %s made at %s: the current offer is newer",
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

    async def _store(self, topic: str, operation: Callable[..., T], *arguments: object) -> T | None:
        """Run a storage ``operation`` in a worker thread; return ``None`` if it failed."""
        try:
            return await asyncio.to_thread(operation, *arguments)
        except StorageError as error:
            # NOTE: the message is lost here; the agent's next publication (or the retained
            # message after a reconnect) brings it back.
            self._status.storage_failures += 1
            logger.error("Could not store the message from %s: %s", topic, error)
            return None

    async def _reject(self, topic: str, payload: bytes, reason: str, received_at: datetime) -> None:
        self._status.rejected_messages += 1
        logger.warning("Rejected message on %s (%d bytes): %s", topic, len(payload), reason)
        try:
            await asyncio.to_thread(
                self._storage.store_rejected, topic, payload, reason, received_at
            )
        except StorageError as error:
            self._status.storage_failures += 1
            logger.error("Could not store the rejected message from %s: %s", topic, error)


def _matches(topic: str, topic_filter: str) -> bool:
    try:
        return aiomqtt.Topic(topic).matches(topic_filter)
    except ValueError:
        # aiomqtt 2.5 rejects an empty topic, a topic with wildcards and one longer than its
        # MAX_TOPIC_LENGTH. No subscription filter matches such a topic.
        return False


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
        protocol=settings.protocol,
        clean_start=False,
        session_expiry_seconds=settings.session_expiry_seconds,
        keepalive_seconds=settings.keepalive_seconds,
        manual_ack=True,
    )
