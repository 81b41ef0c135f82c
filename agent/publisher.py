"""Publishing offers to the cluster's MQTT broker, and taking them back.

Each permitted offer is published with QoS 1 and the retain flag on
``kooperant/v1/{cluster}/{member}/offers/{resource}``. An offer is sent again only when its
content changed (``generated_at`` is ignored in that comparison), after a reconnect, or when the
caller asks for a full republish.

The publisher keeps account of the offer topics the broker retains (``RetainedTopics``, rebuilt
from the audit log at start). A retained offer that is no longer permitted is taken back with an
empty retained payload on its topic, then a retained ``Withdrawal`` on the withdrawal topic. When
the resource is offered again, its retained withdrawal is cleared after the new offer. All of it
is reconciled on every wake-up, so what was decided while the broker was unreachable is sent
when it returns. A retained offer that no decision of this run names, such as a machine whose
OPC UA server has not responded yet after a restart, is taken back only once the caller reports
the adapters as settled (each reported at least once) or the publisher has run for
``unseen_grace_seconds``. So an agent restart does not withdraw and re-offer everything.

A broker that cannot be reached at start or whose connection is lost is retried with bounded
exponential backoff with jitter. The loss is logged once, with the next delay, and the return
once; the failed attempts in between are counted in ``Publisher.failed_attempts``. With an
``AuditLog``, every message the broker acknowledged is recorded there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aiomqtt

from agent.audit import AuditLog, payload_sha256
from agent.config import BrokerSettings
from agent.errors import AuditLogError
from agent.retained import RetainedMessage, RetainedTopics
from agent.waiting import wait_any
from agent.withdrawals import NOT_SHARED, WithdrawalNotice
from kooperant.backoff import BackoffPolicy
from kooperant.protocol import Offer, ResourceKind, WithdrawalReason, offer_topic

logger = logging.getLogger(__name__)

MQTT_TIMEOUT_SECONDS = 10.0
# Time after start before a retained offer that no decision of this run names is taken back.
UNSEEN_GRACE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class _Permitted:
    resource: str
    kind: ResourceKind
    payload: bytes
    key: str
    """The offer's content without ``generated_at``, to tell a changed offer from a repeat."""


class Publisher:
    """Keeps the broker's retained offers of one member equal to the latest ``update``."""

    def __init__(
        self,
        settings: BrokerSettings,
        client_id: str,
        *,
        cluster: str,
        member: str,
        random_value: Callable[[], float] = random.random,
        audit_log: AuditLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        unseen_grace_seconds: float = UNSEEN_GRACE_SECONDS,
    ) -> None:
        self._settings = settings
        self._unseen_grace_seconds = unseen_grace_seconds
        self._started_at: float | None = None
        self._offered_this_run: set[str] = set()
        self._settled = False
        self._client_id = client_id
        self._backoff = BackoffPolicy(
            minimum=settings.reconnect_min_seconds, maximum=settings.reconnect_max_seconds
        )
        self._random_value = random_value
        self.audit_log = audit_log
        self._clock = clock
        self.retained = RetainedTopics(cluster, member)
        self._current: dict[str, _Permitted] = {}
        self._notices: Mapping[str, WithdrawalNotice] = {}
        self._kept_kinds: frozenset[ResourceKind] = frozenset()
        self._published: dict[str, str] = {}
        self._wakeup = asyncio.Event()
        self.connected = asyncio.Event()
        self.failed_attempts = 0
        self.published_messages = 0
        self.audit_failures = 0

    def update(
        self,
        offers: Iterable[Offer],
        *,
        full: bool = False,
        withdrawals: Mapping[str, WithdrawalNotice] | None = None,
        kept_kinds: Collection[ResourceKind] = (),
        settled: bool = False,
    ) -> None:
        """Set the public offers to publish; every other retained offer is taken back.

        ``full`` republishes every offer, changed or not. ``withdrawals`` gives the reason to
        send for a public resource id that is not offered (default ``not_shared``). An owner's
        withdrawal (reason ``withdrawn``) is sent even when the offer is not retained, if the
        retained withdrawal has another reason. Retained offers of ``kept_kinds`` are left
        alone, because the caller has no data to decide about them. ``settled`` means that every
        adapter has reported since the start, so retained offers no decision names may go.
        """
        current = {}
        for offer in offers:
            topic = offer_topic(offer.cluster, offer.member, offer.resource)
            payload = offer.to_payload()
            current[topic] = _Permitted(offer.resource, offer.kind, payload, _content_key(offer))
        self._current = current
        self._notices = dict(withdrawals or {})
        self._kept_kinds = frozenset(kept_kinds)
        self._settled = settled
        if full:
            self._published.clear()
        self._wakeup.set()

    def load_retained(self) -> None:
        """Add the topics the audit log shows as retained to the account of retained topics.

        Topics are only added, because the account of this process may know of messages whose
        audit record failed. A topic taken back twice costs one repeated message.
        """
        if self.audit_log is None:
            return
        recorded = RetainedTopics.from_audit_log(
            self.audit_log, self.retained.cluster, self.retained.member
        )
        for topic, kind in recorded.offers.items():
            self.retained.offers.setdefault(topic, kind)
        for topic, notice in recorded.withdrawals.items():
            self.retained.withdrawals.setdefault(topic, notice)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish and reconnect until ``stop`` is set, then disconnect.

        The account of retained topics is first loaded from the audit log, if there is one.
        """
        self._load_retained_at_start()
        self._started_at = asyncio.get_running_loop().time()
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
        return mqtt_client(self._settings, self._client_id)

    def _load_retained_at_start(self) -> None:
        try:
            self.load_retained()
        except AuditLogError as error:
            # Publishing goes on: offers retained by an earlier run stay on the broker until
            # the audit log can be read again, which is the behaviour without a log.
            logger.error("Cannot read the retained topics from the audit log: %s", error)

    async def _publish_until(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wakeup.clear()
            await self._publish_offers(client)
            await self._withdraw_offers(client)
            await wait_any([stop, self._wakeup], max_seconds=self._seconds_until_grace_ends())

    async def _publish_offers(self, client: aiomqtt.Client) -> None:
        for topic, permitted in list(self._current.items()):
            if self._published.get(topic) != permitted.key:
                message = RetainedMessage(topic, permitted.payload)
                await self._send(client, message, permitted.kind)
                self._published[topic] = permitted.key
            self._offered_this_run.add(topic)
            clear = self.retained.clear_withdrawal(permitted.resource)
            if clear is not None:
                await self._send(client, clear)

    async def _withdraw_offers(self, client: aiomqtt.Client) -> None:
        stale = [
            resource
            for resource in self.retained.stale_offers(self._current, self._kept_kinds)
            if self._decided_or_overdue(resource)
        ]
        owner = [
            resource
            for resource, notice in self._notices.items()
            if notice.reason is WithdrawalReason.WITHDRAWN and resource not in stale
        ]
        for resource in [*stale, *owner]:
            notice = self._notices.get(resource, NOT_SHARED)
            messages = self.retained.withdraw(resource, notice, self._clock())
            for message in messages:
                await self._send(client, message)
                if not message.payload:
                    self._published.pop(message.topic, None)
            if messages:
                history = ", history to be deleted" if notice.delete_history else ""
                logger.info("Withdrew the offer of %s (%s%s)", resource, notice.reason, history)

    def _seconds_until_grace_ends(self) -> float | None:
        """Return how long retained offers no decision names still wait, or ``None``."""
        if self._settled or self._started_at is None:
            return None
        remaining = (
            self._started_at + self._unseen_grace_seconds - asyncio.get_running_loop().time()
        )
        return remaining if remaining > 0 else None

    def _decided_or_overdue(self, resource: str) -> bool:
        """Return whether the stale offer of ``resource`` may be taken back now (module doc)."""
        if resource in self._notices:
            return True
        topic = offer_topic(self.retained.cluster, self.retained.member, resource)
        if self._settled or topic in self._offered_this_run or self._started_at is None:
            return True
        running_seconds = asyncio.get_running_loop().time() - self._started_at
        return running_seconds >= self._unseen_grace_seconds

    async def _send(
        self, client: aiomqtt.Client, message: RetainedMessage, kind: ResourceKind | None = None
    ) -> None:
        # With QoS 1, publish returns only after the broker's PUBACK.
        await client.publish(message.topic, message.payload, qos=1, retain=True)
        self.retained.acknowledged(message, kind)
        self.published_messages += 1
        logger.debug("Published %d bytes on %s", len(message.payload), message.topic)
        self._record(message.topic, message.payload)

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


def mqtt_client(
    settings: BrokerSettings, client_id: str, timeout: float = MQTT_TIMEOUT_SECONDS
) -> aiomqtt.Client:
    """Return an unconnected client for the broker in ``settings``; ``timeout`` is in seconds."""
    password = settings.password
    return aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=password.get_secret_value() if password is not None else None,
        identifier=client_id,
        timeout=timeout,
        tls_params=aiomqtt.TLSParameters() if settings.uses_tls else None,
    )


def _content_key(offer: Offer) -> str:
    data = offer.to_json()
    del data["generated_at"]
    return json.dumps(data, sort_keys=True)
