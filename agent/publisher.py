"""Publishing offers to the cluster's MQTT broker.

Each permitted offer is published with QoS 1 and the retain flag on
``kooperant/v1/{cluster}/{member}/offers/{resource}``. An offer is sent again only when its
content changed (``generated_at`` is ignored in that comparison), after a reconnect, or when the
caller asks for a full republish. A broker that cannot be reached at start or whose connection
is lost is retried with bounded exponential backoff with jitter. The loss is logged once, with the
next delay, and the return once; the failed attempts in between are counted in
``Publisher.failed_attempts``. With an ``AuditLog``, every message the broker acknowledged is
recorded there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import aiomqtt

from agent.audit import AuditLog, payload_sha256
from agent.config import BrokerSettings
from agent.errors import AuditLogError
from agent.waiting import wait_any
from kooperant.backoff import BackoffPolicy
from kooperant.protocol import Offer, offer_topic

logger = logging.getLogger(__name__)

MQTT_TIMEOUT_SECONDS = 10.0


class Publisher:
    """Keeps the broker's retained offers equal to the latest offers given to ``update``."""

    def __init__(
        self,
        settings: BrokerSettings,
        client_id: str,
        *,
        random_value: Callable[[], float] = random.random,
        audit_log: AuditLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._backoff = BackoffPolicy(
            minimum=settings.reconnect_min_seconds, maximum=settings.reconnect_max_seconds
        )
        self._random_value = random_value
        self.audit_log = audit_log
        self._clock = clock
        self._current: dict[str, tuple[bytes, str]] = {}
        self._published: dict[str, str] = {}
        self._wakeup = asyncio.Event()
        self.connected = asyncio.Event()
        self.failed_attempts = 0
        self.published_messages = 0
        self.audit_failures = 0

    def update(self, offers: Iterable[Offer], *, full: bool = False) -> None:
        """Set the offers to publish; ``full`` republishes all of them, changed or not."""
        current = {}
        for offer in offers:
            topic = offer_topic(offer.cluster, offer.member, offer.resource)
            current[topic] = (offer.to_payload(), _content_key(offer))
        # TODO: clear the retained topic of a resource that is no longer permitted. Until then its
        # last offer stays on the broker until someone publishes an empty retained payload there.
        self._current = current
        if full:
            self._published.clear()
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish and reconnect until ``stop`` is set, then disconnect."""
        address = f"{self._settings.host}:{self._settings.port}"
        attempt = 0
        lost = False
        ever_connected = False
        while not stop.is_set():
            try:
                async with self._client() as client:
                    self.connected.set()
                    ever_connected = True
                    if lost:
                        logger.info("Connection to MQTT broker %s restored", address)
                        lost = False
                    else:
                        logger.info("Connected to MQTT broker %s", address)
                    attempt = 0
                    # Messages in flight when a connection drops may be lost: send all again.
                    self._published.clear()
                    await self._publish_until(client, stop)
            except aiomqtt.MqttError as error:
                self.connected.clear()
                delay = self._backoff.delay(attempt, self._random_value())
                attempt += 1
                if lost:
                    self.failed_attempts += 1
                else:
                    lost = True
                    what = "lost" if ever_connected else "cannot be established"
                    logger.warning(
                        "Connection to MQTT broker %s %s (%s), retrying in %.1f s",
                        address,
                        what,
                        error,
                        delay,
                    )
                await wait_any([stop], max_seconds=delay)
        self.connected.clear()

    def _client(self) -> aiomqtt.Client:
        password = self._settings.password
        return aiomqtt.Client(
            self._settings.host,
            self._settings.port,
            username=self._settings.username,
            password=password.get_secret_value() if password is not None else None,
            identifier=self._client_id,
            timeout=MQTT_TIMEOUT_SECONDS,
            tls_params=aiomqtt.TLSParameters() if self._settings.tls else None,
        )

    async def _publish_until(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wakeup.clear()
            for topic, (payload, key) in list(self._current.items()):
                if self._published.get(topic) == key:
                    continue
                # With QoS 1, publish returns only after the broker's PUBACK.
                await client.publish(topic, payload, qos=1, retain=True)
                self._published[topic] = key
                self.published_messages += 1
                logger.debug("Published %d bytes on %s", len(payload), topic)
                self._record(topic, payload)
            await wait_any([stop, self._wakeup])

    def _record(self, topic: str, payload: bytes) -> None:
        if self.audit_log is None:
            return
        try:
            self.audit_log.record(topic, payload, self._clock())
        except AuditLogError as error:
            # Publishing goes on: the broker already has the message, and stopping would only
            # hold back later offers without bringing this row back. The hash in the log line
            # lets the owner match the message the log lacks.
            # TODO: store-and-forward will write the audit row in the same transaction as the
            # queued message, so a failed write can no longer lose the record.
            self.audit_failures += 1
            logger.error(
                "Audit log failed to record the message on %s (sha256 %s), %d failures so far: %s",
                topic,
                payload_sha256(payload),
                self.audit_failures,
                error,
            )


def _content_key(offer: Offer) -> str:
    data = offer.to_json()
    del data["generated_at"]
    return json.dumps(data, sort_keys=True)
