"""The agent's main loop: collect observations, build offers, apply the policy, publish.

A cycle runs when an adapter calls ``notify_changed`` and every ``publish_interval_seconds``,
when every permitted offer is republished whether it changed or not. A change after a quiet spell
runs a cycle at once, so a machine's new state leaves without waiting. A change within
``DEBOUNCE_SECONDS`` of the start of the previous cycle waits until that much time has passed, and
the changes meanwhile share that one cycle. So a flapping source costs at most one cycle, and one
message per offer, every ``DEBOUNCE_SECONDS``. Offers are computed from a clock reading rounded
down to ``TIME_RESOLUTION``, so that within one minute an unchanged machine gives an unchanged
offer and is not republished; ``generated_at`` is the reading itself, to the second.

A cycle also runs at once, without the debounce, when the policy file gets new valid content
(``PolicyWatcher``), when the owner's withdrawals change (read every cycle, and polled every
``POLL_SECONDS``), when the holds of accepted capacity requests change (``accept`` or
``release``, polled the same way) and when a rule of the policy expires. Resources the owner
withdrew are withheld like those no rule permits, and the publisher takes back every retained
offer that is no longer permitted. Accepted requests take their slot or amount out of the offers
before the policy decides them (``agent.holds``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import (
    STOP_TIMEOUT_SECONDS,
    Adapter,
    AdapterContext,
    Observation,
)
from adapters.exports.progress import ReadProgressCallback
from agent.audit import AuditLog, create_log_folder
from agent.broker_session import broker_tls
from agent.config import AdapterConfig, AgentConfig
from agent.delayed_states import with_delayed_states
from agent.errors import AuditLogError, ConfigError
from agent.holds import apply_holds, scheduled_orders
from agent.observation_checks import observation_problem
from agent.offers import OfferBuilder
from agent.outbox import Outbox
from agent.policy import MAX_DELAY_MINUTES, Policy, PolicyContext, StateHistory
from agent.policy_watch import PolicyWatcher
from agent.publisher import Publisher
from agent.request_inbox import RequestInbox
from agent.request_offers import CycleDecisions, offer_decisions
from agent.request_watch import RequestReader
from agent.requests import RequestStore
from agent.resource_ids import policy_public_ids
from agent.resource_sources import ResourceConflict, ResourceSources, has_answered
from agent.sharing import SharingPlan, plan_sharing
from agent.status import AgentStatus, RequestCounts, adapter_status
from agent.status_http import serve_status
from agent.waiting import wait_any
from agent.withdrawals import OwnerWithdrawal, WithdrawalReader, WithdrawalTable
from kooperant.logs import register_secrets_in
from kooperant.net import mask_url_credentials
from kooperant.protocol import Offer, ResourceKind

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.5
START_TIMEOUT_SECONDS = 10.0
TIME_RESOLUTION = timedelta(minutes=1)
READY_POLL_SECONDS = 0.2
POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class OfferSnapshot:
    """One collection from the adapters: offers before the policy and the withheld kinds."""

    offers: tuple[Offer, ...]
    withheld_kinds: Mapping[ResourceKind, str]
    """Kinds left out of ``offers``, each with the adapter's reason."""
    observation_count: int
    now: datetime
    """The clock reading the offers were computed for, rounded down to ``TIME_RESOLUTION``."""
    reading: datetime | None = None
    """The clock reading itself, to the second; a rule's expiry is judged at it."""
    observations: tuple[Observation, ...] = ()
    """The adapters' observations that ``offers`` were built from."""
    settled: bool = False
    """Whether every started adapter has reported at least once since the agent started."""
    answered: bool = False
    """Whether nothing is withheld and every started adapter has data, read its source (which
    may hold nothing to offer) or failed with an error."""
    conflicts: tuple[ResourceConflict, ...] = ()
    """Resource ids that several adapters report in ways that do not add up."""

    @property
    def ready(self) -> bool:
        """Whether every adapter has data, read its source or failed, so waiting adds no offers."""
        return self.answered


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Agent:
    """One member's agent: its adapters, its policy and its connection to the broker."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        poll_seconds: float = POLL_SECONDS,
        read_progress: ReadProgressCallback | None = None,
    ) -> None:
        """``read_progress`` receives the progress of export reads; see ``AdapterContext``."""
        # Whatever started the agent, its passwords stay out of the log lines.
        register_secrets_in(config)
        self._config = config
        self._read_progress = read_progress
        self._clock = clock or _utc_now
        self._poll_seconds = poll_seconds
        self._policy = config.sharing_policy
        self._history = StateHistory()
        self._calendar = config.working_calendar()
        self._tags = {resource: frozenset(item.tags) for resource, item in config.resources.items()}
        self._builder = OfferBuilder(config)
        self.publisher = Publisher(
            config.broker,
            config.client_id,
            cluster=config.cluster,
            member=config.member,
            tls=broker_tls(config),
            clock=self._clock,
        )
        self.policy_error: str | None = None
        """The problems of the policy file's current content, while it is invalid."""
        self._withdrawals: WithdrawalReader | None = None
        self._requests: RequestReader | None = None
        self._wake_at: datetime | None = None
        self._changed = asyncio.Event()
        self._urgent = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: set[str] = set()
        self._reported: set[str] = set()
        self._logged_conflicts: set[ResourceConflict] = set()
        self._rejected_observations: set[tuple[str, object, str]] = set()
        self._named: set[tuple[str, str]] = set()
        self._failing_collects: set[str] = set()
        self._collect_failures: dict[str, int] = {}
        self._last_collected: dict[str, datetime] = {}
        self._last_cycle_at: datetime | None = None
        self._observation_counts: dict[str, int] = {}
        self._started_at = self._clock()
        self._adapters = [self._create_adapter(entry) for entry in config.adapters]

    def notify_changed(self) -> None:
        """Ask for a cycle soon; safe to call from any thread."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._changed.set()
        else:
            loop.call_soon_threadsafe(self._changed.set)

    @property
    def policy(self) -> Policy:
        """The sharing policy in force: the one loaded with the config, or its last valid edit."""
        return self._policy

    @property
    def withdrawals(self) -> Mapping[str, OwnerWithdrawal]:
        """The owner's withdrawals as last read from the local file, by resource id."""
        return {} if self._withdrawals is None else self._withdrawals.current

    def current_offers(self) -> list[Offer]:
        """Collect from the started adapters and return the public offers the policy lets out."""
        return list(self.plan(self.collect_offers()).offers)

    def plan(self, snapshot: OfferSnapshot) -> SharingPlan:
        """Decide every offer of ``snapshot`` under the policy and the owner's withdrawals."""
        context = self.policy_context(snapshot)
        offers = self.policy_offers(snapshot, context)
        return plan_sharing(self._policy, offers, context, self.withdrawals)

    def policy_offers(self, snapshot: OfferSnapshot, context: PolicyContext) -> tuple[Offer, ...]:
        """Return the offers to decide: the snapshot's, with delayed machines rebuilt and the
        holds of accepted requests taken out."""
        offers = with_delayed_states(
            snapshot.offers,
            snapshot.observations,
            self._policy,
            context,
            self._builder,
            snapshot.withheld_kinds,
        )
        if self._requests is None:
            return offers
        reading = snapshot.reading or snapshot.now
        held = apply_holds(
            offers,
            self._requests.holds(reading),
            policy_public_ids(self._policy),
            scheduled_orders(snapshot.observations),
        )
        if held.scheduled:
            self._requests.end_scheduled(held.scheduled, reading)
        return held.offers

    def policy_context(self, snapshot: OfferSnapshot) -> PolicyContext:
        """Record the snapshot's machine states and return the context to decide its offers in."""
        for offer in snapshot.offers:
            if offer.state is not None and offer.state_since is not None:
                self._history.record(offer.resource, offer.state, offer.state_since)
        self._history.prune(snapshot.now - timedelta(minutes=MAX_DELAY_MINUTES))
        return PolicyContext(
            now=snapshot.now,
            calendar=self._calendar,
            zone=self._config.zone,
            tags=self._tags,
            history=self._history,
            reading=snapshot.reading,
        )

    def collect_offers(self) -> OfferSnapshot:
        """Collect once from the started adapters and build offers, without applying the policy."""
        # Offers are computed for the rounded reading but stamped with the reading itself, so an
        # offer made after a withdrawal in the same minute is newer than it at the aggregator.
        reading = self._clock().astimezone(UTC).replace(microsecond=0)
        now = _round_down(reading, TIME_RESOLUTION)
        observations: list[Observation] = []
        withheld: dict[ResourceKind, str] = {}
        sources = ResourceSources()
        answered = set()
        for adapter in self._adapters:
            for kind, reason in adapter.withheld_kinds().items():
                withheld[kind] = f"adapter {adapter.name}: {reason}"
            if adapter.name in self._started:
                collected = self._collect(adapter)
                self._observation_counts[adapter.name] = len(collected)
                if collected:
                    self._reported.add(adapter.name)
                if collected or has_answered(adapter):
                    answered.add(adapter.name)
                sources.add(adapter.name, collected)
                observations.extend(collected)

        conflicts = sources.conflicts()
        self._log_new_conflicts(conflicts)
        offers = [
            dataclasses.replace(offer, generated_at=reading)
            for offer in self._builder.build(observations, now, withheld)
        ]
        settled = not withheld and self._started <= self._reported
        return OfferSnapshot(
            tuple(offers),
            withheld,
            len(observations),
            now,
            reading=reading,
            settled=settled,
            observations=tuple(observations),
            answered=not withheld and self._started <= answered,
            conflicts=conflicts,
        )

    def _log_new_conflicts(self, conflicts: tuple[ResourceConflict, ...]) -> None:
        for conflict in conflicts:
            if conflict in self._logged_conflicts:
                continue
            self._logged_conflicts.add(conflict)
            logger.warning("%s", conflict.message())

    def status(self) -> AgentStatus:
        """Return the agent's broker connection, outbox and each adapter's health.

        Reads the outbox's size from the local file; does no network I/O.
        """
        adapters = tuple(
            adapter_status(
                adapter,
                entry.type_name,
                started=adapter.name in self._started,
                observations=self._observation_counts.get(adapter.name, 0),
                collect_failing=adapter.name in self._failing_collects,
                collect_failures=self._collect_failures.get(adapter.name, 0),
                last_collected_at=self._last_collected.get(adapter.name),
            )
            for adapter, entry in zip(self._adapters, self._config.adapters, strict=True)
        )
        return AgentStatus(
            member=self._config.member,
            cluster=self._config.cluster,
            now=self._clock(),
            started_at=self._started_at,
            broker_url=mask_url_credentials(self._config.broker.url),
            broker_connected=self.publisher.connected.is_set(),
            published_messages=self.publisher.published_messages,
            broker_failed_attempts=self.publisher.failed_attempts,
            policy_error=self.policy_error,
            adapters=adapters,
            outbox=self.publisher.outbox_status(),
            requests=self._request_counts(),
            last_cycle_at=self._last_cycle_at,
            publish_interval_seconds=self._config.publish_interval_seconds,
        )

    def _request_counts(self) -> RequestCounts | None:
        inbox = self.publisher.requests
        if self._requests is None or inbox is None:
            return None
        return self._requests.counts(self._clock(), inbox.invalid_requests)

    async def collect_when_ready(self, max_seconds: float) -> OfferSnapshot:
        """Collect as soon as no kind is withheld and an adapter reported something.

        Collects again on every ``notify_changed`` and every ``READY_POLL_SECONDS``, because not
        every adapter notifies when its first data arrives. After ``max_seconds`` the last
        collection is returned as it is.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while True:
            self._changed.clear()
            snapshot = self.collect_offers()
            remaining = deadline - loop.time()
            if snapshot.ready or remaining <= 0:
                return snapshot
            await wait_any([self._changed], max_seconds=min(remaining, READY_POLL_SECONDS))

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop the adapters and disconnect from the broker.

        Raises ``AuditLogError`` before starting anything when the audit log cannot be opened,
        so that no offer leaves unrecorded because of a file problem known at start.
        """
        create_log_folder(self._config.audit_log_path)
        audit_log = AuditLog(self._config.audit_log_path)
        try:
            table = WithdrawalTable(audit_log.path)
        except AuditLogError:
            audit_log.close()
            raise
        try:
            outbox = Outbox(audit_log.path, self._config.outbox.limits(), clock=self._clock)
        except AuditLogError:
            table.close()
            audit_log.close()
            raise
        try:
            store = RequestStore(outbox, self._config.cluster, self._config.member)
        except AuditLogError:
            outbox.close()
            table.close()
            audit_log.close()
            raise
        self.publisher.audit_log = audit_log
        self.publisher.outbox = outbox
        inbox = RequestInbox(store, self._clock)
        self.publisher.requests = inbox
        self._requests = RequestReader(store)
        watcher = PolicyWatcher(
            self._config.policy_path,
            self._apply_policy,
            self._reject_policy,
            variables=self._config.variables,
            poll_seconds=self._poll_seconds,
        )
        self._withdrawals = WithdrawalReader(table)
        try:
            self._withdrawals.read()
            self._requests.read()
            await self.start_adapters()

            helpers_stop = asyncio.Event()
            helpers = [
                asyncio.create_task(self.publisher.run(helpers_stop), name="publisher"),
                asyncio.create_task(watcher.run(helpers_stop), name="policy watcher"),
                asyncio.create_task(self._poll(helpers_stop), name="withdrawal poll"),
            ]
            if self._config.status.enabled:
                endpoint = serve_status(self._config.status, self.status, helpers_stop)
                helpers.append(asyncio.create_task(endpoint, name="status endpoint"))
            try:
                await self._cycle_until(stop, helpers)
            finally:
                await self.stop_adapters()
                helpers_stop.set()
                await asyncio.gather(*helpers)
        finally:
            self.publisher.audit_log = None
            self.publisher.outbox = None
            self.publisher.requests = None
            self._withdrawals = None
            self._requests = None
            store.close()
            outbox.close()
            table.close()
            audit_log.close()

    async def start_adapters(self) -> None:
        """Start every adapter; one that fails to start is logged and left out."""
        self._loop = asyncio.get_running_loop()
        await asyncio.gather(*(self._start_adapter(adapter) for adapter in self._adapters))

    async def stop_adapters(self) -> None:
        """Stop every adapter, waiting at most ``STOP_TIMEOUT_SECONDS`` for each."""
        await asyncio.gather(*(self._stop_adapter(adapter) for adapter in self._adapters))

    def _create_adapter(self, entry: AdapterConfig) -> Adapter[Any]:
        context = AdapterContext(
            member=self._config.member,
            timezone=self._config.zone,
            config_dir=self._config.config_dir,
            notify_changed=self.notify_changed,
            clock=self._clock,
            read_progress=self._read_progress,
        )
        adapter: Adapter[Any] = entry.adapter_class(entry.name, entry.settings, context)
        return adapter

    async def _cycle_until(self, stop: asyncio.Event, helpers: list[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        interval = self._config.publish_interval_seconds
        next_full = loop.time()
        while not stop.is_set():
            for helper in helpers:
                if helper.done():
                    helper.result()  # re-raises a helper's crash, which is a bug
                    return
            full = loop.time() >= next_full
            if full:
                next_full = loop.time() + interval
            self._changed.clear()
            self._urgent.clear()
            cycle_started = loop.time()
            self._cycle(full)

            wait = next_full - loop.time()
            if self._wake_at is not None:
                wait = min(wait, (self._wake_at - self._clock()).total_seconds())
            await wait_any([stop, self._changed, self._urgent], max_seconds=max(0.0, wait))
            if self._changed.is_set() and not self._urgent.is_set():
                await self._debounce(stop, cycle_started + DEBOUNCE_SECONDS - loop.time())

    async def _debounce(self, stop: asyncio.Event, remaining_seconds: float) -> None:
        """Wait out the rest of ``DEBOUNCE_SECONDS`` since the last cycle began, if any is left.

        The first change after a quiet spell therefore runs its cycle at once.
        """
        if remaining_seconds > 0:
            await wait_any([stop, self._urgent], max_seconds=remaining_seconds)

    def _cycle(self, full: bool) -> None:
        if self._withdrawals is not None and self._withdrawals.read():
            self._load_retained()
        if self._requests is not None:
            self._requests.poll(self._clock())
        snapshot = self.collect_offers()
        plan = self.plan(snapshot)
        if self.publisher.requests is not None:
            self.publisher.requests.offer_decision = CycleDecisions(
                offer_decisions(plan.offers, plan.withdrawals),
                self._policy,
                self._tags,
                snapshot.reading or snapshot.now,
                self._config.zone,
            )
        self._remember_public_ids(plan.public_ids)
        self.publisher.update(
            plan.offers,
            full=full,
            withdrawals=plan.withdrawals,
            kept_kinds=snapshot.withheld_kinds.keys(),
            settled=snapshot.settled,
        )
        self._wake_at = self._policy.next_expiry(
            snapshot.reading or snapshot.now, self._config.zone
        )
        self._last_cycle_at = self._clock()

    def _remember_public_ids(self, public_ids: Mapping[str, str]) -> None:
        """Record new pairs of internal and public id, for ``withdraw`` after a rename."""
        audit_log = self.publisher.audit_log
        new = {key: value for key, value in public_ids.items() if (key, value) not in self._named}
        if audit_log is None or not new:
            return
        try:
            audit_log.remember_public_ids(new)
        except AuditLogError as error:
            # Publishing goes on; only a later withdraw by internal id may miss this public id.
            logger.error("Cannot record the public ids %s in the audit log: %s", new, error)
        self._named.update(new.items())

    def _apply_policy(self, policy: Policy) -> None:
        self._policy = policy
        self.policy_error = None
        self._urgent.set()

    def _reject_policy(self, error: ConfigError) -> None:
        self.policy_error = str(error)

    async def _poll(self, stop: asyncio.Event) -> None:
        """Wake a cycle when the owner's withdrawals change or a rule's expiry time has come.

        The clock is read every poll, so an expiry is noticed also after a clock jump.
        """
        while not stop.is_set():
            await wait_any([stop], max_seconds=self._poll_seconds)
            if self._wake_at is not None and self._clock() >= self._wake_at:
                self._urgent.set()
            if self._withdrawals is not None and self._withdrawals.poll():
                self._load_retained()
                self._urgent.set()
            if self._requests is not None and self._requests.poll(self._clock()):
                self._urgent.set()

    def _load_retained(self) -> None:
        try:
            # The withdraw command may have sent and recorded messages meanwhile.
            self.publisher.load_retained()
        except AuditLogError as error:
            logger.error("Cannot read the retained topics from the audit log: %s", error)

    def _collect(self, adapter: Adapter[Any]) -> list[Observation]:
        try:
            observations = adapter.collect()
        except Exception:
            # An adapter bug must not stop the other adapters; log it once until it recovers.
            self._collect_failures[adapter.name] = self._collect_failures.get(adapter.name, 0) + 1
            if adapter.name not in self._failing_collects:
                logger.exception("Adapter %s failed to collect; leaving it out", adapter.name)
                self._failing_collects.add(adapter.name)
            return []
        self._last_collected[adapter.name] = self._clock()
        if adapter.name in self._failing_collects:
            logger.info("Adapter %s collects again", adapter.name)
            self._failing_collects.discard(adapter.name)
        return self._checked(adapter, observations)

    def _checked(self, adapter: Adapter[Any], observations: list[Observation]) -> list[Observation]:
        """Leave out the observations no offer can carry, logging each problem once."""
        offerable = []
        for observation in observations:
            problem = observation_problem(observation)
            if problem is None:
                offerable.append(observation)
                continue
            resource = getattr(observation, "resource", None)
            key = (adapter.name, resource, problem)
            if key not in self._rejected_observations:
                self._rejected_observations.add(key)
                logger.warning(
                    "Adapter %s reported an observation of resource %r that cannot be offered: "
                    "%s; it is left out",
                    adapter.name,
                    resource,
                    problem,
                )
        return offerable

    async def _start_adapter(self, adapter: Adapter[Any]) -> None:
        limit = asyncio.timeout(START_TIMEOUT_SECONDS)
        try:
            async with limit:
                await adapter.start()
        except TimeoutError:
            if not limit.expired():
                # A time-out of the adapter's own, such as a connect attempt, not the limit.
                logger.exception(
                    "Adapter %s failed to start; its observations are left out", adapter.name
                )
                return
            logger.error(
                "Adapter %s did not return from start() within %s s; its observations are left "
                "out. An adapter must start its work in background tasks and return",
                adapter.name,
                START_TIMEOUT_SECONDS,
            )
            return
        except Exception:
            # Adapters should retry unreachable sources themselves; whatever escapes start()
            # leaves this adapter out, but the agent runs on with the others.
            logger.exception(
                "Adapter %s failed to start; its observations are left out", adapter.name
            )
            return
        self._started.add(adapter.name)
        logger.info("Adapter %s (%s) started", adapter.name, type(adapter).__name__)

    async def _stop_adapter(self, adapter: Adapter[Any]) -> None:
        try:
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                await adapter.stop()
        except TimeoutError:
            logger.error(
                "Adapter %s did not stop within %.0f s", adapter.name, STOP_TIMEOUT_SECONDS
            )
        except Exception:
            logger.exception("Adapter %s failed to stop cleanly", adapter.name)


def _round_down(moment: datetime, resolution: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return moment - (moment - epoch) % resolution
