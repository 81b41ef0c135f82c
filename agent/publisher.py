"""Publishing offers to the cluster's MQTT broker, and taking them back.

Each permitted offer goes, retained, to ``kooperant/v1/{cluster}/{member}/offers/{resource}``.
The publisher decides what to send and queues it in the outbox (``agent.outbox``) at once,
connected or not; the forwarder (``agent.forwarder``) sends the queue in order whenever a
connection is up. An offer is queued again only when its content changed (``generated_at`` is
ignored in that comparison), or on a refresh. A refresh is the caller's full republish, or a
connection whose CONNACK reports no kept session, because then the broker may have lost its
retained messages too.
A refresh skips an offer whose topic still has a message queued, so a broker that is down for days
does not fill the queue with repeats.

The publisher keeps account of the offer topics the broker retains (``RetainedTopics``, rebuilt
from the audit log and the queue at start). A retained offer that is no longer permitted is taken
back with an empty retained payload on its topic, then a retained ``Withdrawal`` on the withdrawal
topic. When the resource is offered again, its retained withdrawal is cleared after the new offer.
A retained offer that no decision of this run names, such as a machine whose OPC UA server has not
responded yet after a restart, is taken back only once the caller reports the adapters as settled
(each reported at least once) or the publisher has run for ``unseen_grace_seconds``. So an agent
restart does not withdraw and re-offer everything.

The connection carries the member's status (``agent.broker_session``). A broker that cannot be
reached at start or whose connection is lost is retried with bounded exponential backoff with
jitter. The loss is logged once, with the next delay, and the return once; the failed attempts in
between are counted in ``Publisher.failed_attempts``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.audit import AuditLog
from agent.broker_session import connect_options, first_protocol, member_status
from agent.config import BrokerSettings
from agent.errors import AuditLogError
from agent.forwarder import Forwarder
from agent.outbox import Outbox, OutgoingMessage, PayloadBuilder
from agent.request_inbox import RequestInbox
from agent.retained import RetainedTopics
from agent.status import OutboxStatus
from agent.waiting import wait_any
from agent.withdrawals import NOT_SHARED, WithdrawalNotice
from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import (
    MqttError,
    MqttSession,
    NotAuthorized,
    ProtocolNotAccepted,
    TlsSettings,
    TlsSettingsError,
)
from kooperant.protocol import (
    Envelope,
    Offer,
    OfflineReason,
    ResourceKind,
    WithdrawalReason,
    offer_topic,
    status_topic,
)

logger = logging.getLogger(__name__)

# Time after start before a retained offer that no decision of this run names is taken back.
UNSEEN_GRACE_SECONDS = 120.0
# Delay before a decision is queued again after the outbox could not be written.
QUEUE_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class _Permitted:
    offer: Offer
    key: str
    """The offer's content without ``generated_at``, to tell a changed offer from a repeat."""


class Publisher:
    """Keeps the broker's retained offers of one member equal to the latest ``update``.

    Set ``outbox`` (and ``audit_log``, to rebuild the account of retained topics) before ``run``.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        client_id: str,
        *,
        cluster: str,
        member: str,
        random_value: Callable[[], float] = random.random,
        audit_log: AuditLog | None = None,
        outbox: Outbox | None = None,
        tls: TlsSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        unseen_grace_seconds: float = UNSEEN_GRACE_SECONDS,
        poll_seconds: float = QUEUE_RETRY_SECONDS,
    ) -> None:
        self._settings = settings
        self._tls = tls
        self._protocol = first_protocol(settings)
        self._mqtt5_worked = False
        self._unseen_grace_seconds = unseen_grace_seconds
        self._poll_seconds = poll_seconds
        self._started_at: float | None = None
        self._offered_this_run: set[str] = set()
        self._settled = False
        self._client_id = client_id
        self._backoff = BackoffPolicy(
            minimum=settings.reconnect_min_seconds, maximum=settings.reconnect_max_seconds
        )
        self._random_value = random_value
        self.audit_log = audit_log
        self.outbox = outbox
        self._forwarder: Forwarder | None = None
        self._clock = clock
        self.retained = RetainedTopics(cluster, member)
        self._current: dict[str, _Permitted] = {}
        self._notices: Mapping[str, WithdrawalNotice] = {}
        self._kept_kinds: frozenset[ResourceKind] = frozenset()
        self._published: dict[str, str] = {}
        self._refresh = False
        self._dropped = False
        self._queue_failing = False
        self._wakeup = asyncio.Event()
        self.connected = asyncio.Event()
        self.failed_attempts = 0
        self.queue_failures = 0
        self.requests: RequestInbox | None = None
        """Set it before ``run`` to subscribe to the member's request topics on each connect."""

    @property
    def published_messages(self) -> int:
        """Messages the broker acknowledged in this run."""
        return 0 if self._forwarder is None else self._forwarder.published_messages

    @property
    def file_failures(self) -> int:
        """Failed reads of the outbox and failed records of delivered messages in this run."""
        return 0 if self._forwarder is None else self._forwarder.file_failures

    @property
    def rejected_messages(self) -> int:
        """Messages the broker rejected in this run, dropped from the outbox."""
        return 0 if self._forwarder is None else self._forwarder.rejected_messages

    def outbox_status(self) -> OutboxStatus | None:
        """Return the state of the outbox, or ``None`` before ``run`` set it up."""
        outbox = self.outbox
        if outbox is None:
            return None
        try:
            state = outbox.state()
        except AuditLogError as error:
            logger.debug("Cannot read the outbox for the status: %s", error)
            state = None
        return OutboxStatus(
            queued_messages=None if state is None else state.queued_messages,
            queued_bytes=None if state is None else state.queued_bytes,
            oldest_queued_at=None if state is None else state.oldest_queued_at,
            dropped_messages=outbox.dropped_messages,
            rejected_messages=self.rejected_messages,
        )

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

        ``full`` queues every offer again, changed or not, unless a message on its topic is
        still queued. ``withdrawals`` gives the reason to send for a public resource id that is
        not offered (default ``not_shared``). An owner's withdrawal (reason ``withdrawn``) is
        sent even when the offer is not retained, if the retained withdrawal has another reason.
        Retained offers of ``kept_kinds`` are left alone, because the caller has no data to
        decide about them. ``settled`` means that every adapter has reported since the start, so
        retained offers no decision names may go.
        """
        current = {}
        for offer in offers:
            topic = offer_topic(offer.cluster, offer.member, offer.resource)
            current[topic] = _Permitted(offer, _content_key(offer))
        self._current = current
        self._notices = dict(withdrawals or {})
        self._kept_kinds = frozenset(kept_kinds)
        self._settled = settled
        if full:
            self._refresh = True
        self._wakeup.set()

    def load_retained(self) -> None:
        """Rebuild the account of retained topics from the audit log and the outbox.

        Raises ``AuditLogError`` when the file cannot be read.
        """
        if self.audit_log is None and self.outbox is None:
            return
        self.retained = RetainedTopics.rebuild(
            self.audit_log, self.outbox, self.retained.cluster, self.retained.member
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Queue decisions and forward them until ``stop`` is set, then disconnect.

        The account of retained topics is first loaded from the audit log and the outbox.
        """
        if self.outbox is None:
            raise RuntimeError("Publisher.run needs an outbox; set Publisher.outbox first")
        self._forwarder = Forwarder(self.outbox, self._clock, poll_seconds=self._poll_seconds)
        self._load_retained_at_start()
        self._started_at = asyncio.get_running_loop().time()
        tasks = {
            asyncio.create_task(self._decide_until(stop), name="publisher decisions"),
            asyncio.create_task(self._connect_until(stop, self._forwarder), name="connection"),
        }
        try:
            # Both end when stop is set; a crash of one (a bug) ends the other and is raised.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

    # --- deciding and queuing -----------------------------------------------------------------

    async def _decide_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wakeup.clear()
            done = self._queue_decisions()
            wait = self._seconds_until_grace_ends() if done else self._poll_seconds
            await wait_any([stop, self._wakeup], max_seconds=wait)

    def _queue_decisions(self) -> bool:
        """Queue what the latest decisions need; return False when the outbox failed."""
        try:
            self._queue_offers()
            self._queue_withdrawals()
        except AuditLogError as error:
            self.queue_failures += 1
            if not self._queue_failing:
                self._queue_failing = True
                logger.error("Cannot queue messages in the outbox, retrying: %s", error)
            return False
        if self._queue_failing:
            self._queue_failing = False
            logger.info("Queuing messages works again after %d failures", self.queue_failures)
        self._refresh = False
        if self._dropped:
            self._recover_dropped()
        return True

    def _recover_dropped(self) -> None:
        """Decide again after the outbox dropped messages at its limits.

        A dropped clear or withdrawal leaves the broker retaining an offer that the account
        shows as taken back, and a dropped offer leaves the broker without it. The account is
        rebuilt from what was delivered and what is still queued, and a refresh queues again
        every current offer without a queued message.
        """
        self._dropped = False
        try:
            self.load_retained()
        except AuditLogError as error:
            logger.error(
                "Cannot read the retained topics after the outbox dropped messages: %s", error
            )
            return
        self._refresh = True
        self._wakeup.set()

    def _queue_offers(self) -> None:
        queued_topics = self._queued_topics() if self._refresh else set()
        for topic, permitted in list(self._current.items()):
            messages = []
            changed = self._published.get(topic) != permitted.key
            if changed or (self._refresh and topic not in queued_topics):
                messages.append(OutgoingMessage(topic, _offer_builder(permitted.offer)))
            clear = self.retained.clear_withdrawal(permitted.offer.resource)
            if clear is not None:
                messages.append(clear)
            self._enqueue(messages, permitted.offer.kind)
            self._published[topic] = permitted.key
            self._offered_this_run.add(topic)

    def _queue_withdrawals(self) -> None:
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
            self._enqueue(messages)
            for message in messages:
                if message.build is None:
                    self._published.pop(message.topic, None)
            if messages:
                history = ", history to be deleted" if notice.delete_history else ""
                logger.info("Withdrew the offer of %s (%s%s)", resource, notice.reason, history)

    def _enqueue(
        self, messages: Sequence[OutgoingMessage], kind: ResourceKind | None = None
    ) -> None:
        if not messages:
            return
        assert self.outbox is not None and self._forwarder is not None  # set by run
        dropped_before = self.outbox.dropped_messages
        for queued in self.outbox.enqueue(messages):
            self.retained.queued(queued, kind)
        if self.outbox.dropped_messages > dropped_before:
            self._dropped = True
        self._forwarder.wakeup.set()

    def _queued_topics(self) -> set[str]:
        assert self.outbox is not None  # set by run
        return {topic for topic, payload in self.outbox.latest_payloads().items() if payload}

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

    def _load_retained_at_start(self) -> None:
        try:
            self.load_retained()
        except AuditLogError as error:
            # Publishing goes on: offers retained by an earlier run stay on the broker until
            # the audit log can be read again, which is the behaviour without a log.
            logger.error("Cannot read the retained topics from the audit log: %s", error)

    # --- connecting and forwarding ------------------------------------------------------------

    async def _connect_until(self, stop: asyncio.Event, forwarder: Forwarder) -> None:
        address = f"{self._settings.host}:{self._settings.port}"
        attempt = 0
        lost = False
        ever_connected = False
        while not stop.is_set():
            connected_at = self._clock()
            try:
                async with self._session(connected_at) as session:
                    self.connected.set()
                    self._mqtt5_worked = self._mqtt5_worked or self._protocol == "5"
                    ever_connected = True
                    if lost:
                        logger.info("Connection to MQTT broker %s restored", address)
                        lost = False
                    else:
                        logger.info("Connected to MQTT broker %s", address)
                    attempt = 0
                    await self._serve(session, connected_at, stop, forwarder)
            except MqttError as error:
                self.connected.clear()
                if isinstance(error, ProtocolNotAccepted) and self._fall_back_to_mqtt_311(
                    address, error
                ):
                    continue
                delay = self._backoff.delay(attempt, self._random_value())
                attempt += 1
                if lost:
                    self.failed_attempts += 1
                else:
                    lost = True
                    self._log_lost(address, error, delay, ever_connected)
                await wait_any([stop], max_seconds=delay)
        self.connected.clear()

    def _fall_back_to_mqtt_311(self, address: str, error: ProtocolNotAccepted) -> bool:
        """Switch an ``auto`` connection to MQTT 3.1.1; return ``False`` if that is not allowed."""
        if self._settings.protocol != "auto" or self._protocol == "3.1.1" or self._mqtt5_worked:
            # A broker that accepted MQTT 5 in this run and then sends no CONNACK is slow or
            # restarting, which a retry with the same version handles.
            return False
        self._protocol = "3.1.1"
        logger.info(
            "MQTT broker %s did not accept MQTT 5 (%s); using MQTT 3.1.1 from now on",
            address,
            error,
        )
        return True

    def _session(self, connected_at: datetime) -> MqttSession:
        will = member_status(
            self.retained.cluster,
            self.retained.member,
            connected_at,
            OfflineReason.CONNECTION_LOST,
        )
        options = connect_options(self._settings, self._client_id, will, self._tls, self._protocol)
        return MqttSession(options)

    async def _serve(
        self,
        session: MqttSession,
        connected_at: datetime,
        stop: asyncio.Event,
        forwarder: Forwarder,
    ) -> None:
        """Announce the member online, forward the outbox until stop, then announce the stop."""
        topic = status_topic(self.retained.cluster, self.retained.member)
        online = member_status(self.retained.cluster, self.retained.member, connected_at)
        await session.publish(topic, online.to_payload(), qos=1, retain=True)
        if not session.session_present:
            # The broker kept no session, so it may have lost its retained offers as well. The
            # offers are queued before the forwarder starts, so that none is delivered in between
            # and then queued again as a repeat.
            self._refresh = True
            self._queue_decisions()

        if self.requests is not None:
            await self.requests.subscribe(session)
        watcher = asyncio.create_task(
            _watch_connection(session, self.requests, forwarder), name="connection watch"
        )
        draining = asyncio.create_task(forwarder.drain(session, stop), name="forwarder")
        try:
            await asyncio.wait({watcher, draining}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, draining):
                task.cancel()
            await asyncio.gather(watcher, draining, return_exceptions=True)
        for task in (draining, watcher):
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error

        stopped = member_status(
            self.retained.cluster, self.retained.member, connected_at, OfflineReason.STOPPED
        )
        await session.publish(topic, stopped.to_payload(), qos=1, retain=True)

    def _log_lost(self, address: str, error: MqttError, delay: float, ever: bool) -> None:
        # The operator must act in both cases; the retries go on in case the cause is fixed.
        if isinstance(error, NotAuthorized):
            logger.error(
                "%s; check broker.username, broker.password and broker.tls in the agent config. "
                "Retrying in %.1f s",
                error,
                delay,
            )
            return
        if isinstance(error, TlsSettingsError):
            # The files are checked at start, so this means one changed while the agent runs.
            logger.error(
                "Cannot connect to MQTT broker %s: %s; fix broker.tls in the agent config. "
                "Retrying in %.1f s",
                address,
                error,
                delay,
            )
            return
        state = "lost" if ever else "cannot be established"
        logger.warning(
            "Connection to MQTT broker %s %s (%s), retrying in %.1f s", address, state, error, delay
        )


async def _watch_connection(
    session: MqttSession, requests: RequestInbox | None, forwarder: Forwarder
) -> None:
    """Return when the session ends; raises ``ConnectionLost`` when the connection drops.

    Received messages are requests, handed to ``requests``, which acknowledges each once stored.
    """
    if requests is not None:
        await requests.serve(session, forwarder.wakeup.set)
        return
    async for message in session.messages():
        session.ack(message)


def _offer_builder(offer: Offer) -> PayloadBuilder:
    def build(envelope: Envelope) -> bytes:
        return offer.with_envelope(envelope).to_payload()

    return build


def _content_key(offer: Offer) -> str:
    data = offer.to_json()
    del data["generated_at"]
    return json.dumps(data, sort_keys=True)
