"""Prometheus metrics of the aggregator, served at ``GET /metrics``.

``ServerCollector`` reads the counters that ingest keeps in ``ServerStatus``, and those of the
request router and the e-mail notifier when the process runs them. It also reports two database
readings taken just before each scrape: whether ``SELECT 1`` works and how many current offers
there are. Nothing is counted twice. ``ServerMetrics`` owns a ``CollectorRegistry`` of its own, not
the process-wide default, so that several servers in one process (as in the tests) do not collide.

No label names a member, a cluster or a resource: the page may be open to anonymous callers, and
labels per member would grow with the cluster. Label values come from fixed sets (message kinds,
``RejectReason``, routing actions).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kooperant import __version__
from server.errors import StorageError
from server.request_notifier import RequestNotifier
from server.request_router import RequestRouter
from server.status import RejectReason, ServerStatus
from server.storage import Storage

logger = logging.getLogger(__name__)

PREFIX = "kooperant_server"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class DatabaseReading:
    """The database's state just before a scrape; ``current_offers`` is ``None`` while it fails."""

    up: bool
    current_offers: int | None


class ServerCollector(Collector):
    """Turns the server's counters and the last ``DatabaseReading`` into metric families."""

    def __init__(
        self,
        status: ServerStatus,
        router: RequestRouter | None = None,
        notifier: RequestNotifier | None = None,
    ) -> None:
        self._status = status
        self._router = router
        self._notifier = notifier
        self.database: DatabaseReading | None = None

    def collect(self) -> Iterator[Metric]:
        yield from _process_metrics(self._status)
        yield from _message_metrics(self._status)
        yield from _storage_metrics(self._status, self.database)
        if self._router is not None:
            yield from _router_metrics(self._router)
        if self._notifier is not None:
            yield from _notifier_metrics(self._notifier)


class ServerMetrics:
    """The metrics page of one server process: its registry and the database reading."""

    def __init__(
        self,
        storage: Storage,
        status: ServerStatus,
        clock: Callable[[], datetime],
        *,
        router: RequestRouter | None = None,
        notifier: RequestNotifier | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._collector = ServerCollector(status, router, notifier)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._collector)

    async def render(self) -> bytes:
        """Read the database in a worker thread, then return the page in the text format 0.0.4."""
        self._collector.database = await asyncio.to_thread(self._read_database)
        return generate_latest(self.registry)

    def _read_database(self) -> DatabaseReading:
        try:
            self._storage.check_health()
            return DatabaseReading(True, self._storage.count_current_offers(self._clock()))
        except StorageError as error:
            # /healthz and ingest's own log report the failure; a scrape every few seconds
            # must not repeat it at WARNING.
            logger.debug("Database reading for the metrics failed: %s", error)
            return DatabaseReading(False, None)


def _process_metrics(status: ServerStatus) -> Iterator[Metric]:
    info = InfoMetricFamily(f"{PREFIX}_build", "The server's version.")
    info.add_metric([], {"version": __version__})
    yield info
    yield GaugeMetricFamily(
        f"{PREFIX}_start_time_seconds",
        "When the server process started, as Unix time.",
        value=status.started_at.timestamp(),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_ingest_connected",
        "1 while ingest is connected to the MQTT broker, else 0.",
        value=1 if status.broker_connected else 0,
    )


def _message_metrics(status: ServerStatus) -> Iterator[Metric]:
    yield CounterMetricFamily(
        f"{PREFIX}_messages_received",
        "Messages ingest received from the broker, whatever became of them.",
        value=status.received_messages,
    )
    yield from _stored_metrics(status)
    yield from _unstored_metrics(status)


def _stored_metrics(status: ServerStatus) -> Iterator[Metric]:
    stored = CounterMetricFamily(
        f"{PREFIX}_messages_stored",
        "Messages stored for the first time, by kind; stale ones included.",
        labels=["kind"],
    )
    stored.add_metric(["offer"], status.accepted_offers)
    stored.add_metric(["withdrawal"], status.accepted_withdrawals)
    stored.add_metric(["status"], status.accepted_statuses)
    stored.add_metric(["answer"], status.accepted_answers)
    yield stored
    stale = CounterMetricFamily(
        f"{PREFIX}_messages_stale",
        "Stored messages that changed nothing because a newer one was stored before.",
        labels=["kind"],
    )
    stale.add_metric(["withdrawal"], status.stale_withdrawals)
    stale.add_metric(["status"], status.stale_statuses)
    yield stale
    yield CounterMetricFamily(
        f"{PREFIX}_offers_cleared",
        "Current offers removed because their owner cleared the retained offer.",
        value=status.cleared_offers,
    )


def _unstored_metrics(status: ServerStatus) -> Iterator[Metric]:
    yield CounterMetricFamily(
        f"{PREFIX}_messages_duplicate",
        "Messages received again after they were stored, and ignored.",
        value=status.duplicate_messages,
    )
    rejected = CounterMetricFamily(
        f"{PREFIX}_messages_rejected",
        "Messages rejected and kept as rejected messages, by reason.",
        labels=["reason"],
    )
    for reason in RejectReason:
        rejected.add_metric([reason.value], status.rejected_by_reason[reason])
    yield rejected
    yield CounterMetricFamily(
        f"{PREFIX}_messages_dropped",
        "Messages on topics outside ingest's subscriptions, neither stored nor rejected.",
        value=status.dropped_messages,
    )


def _storage_metrics(status: ServerStatus, database: DatabaseReading | None) -> Iterator[Metric]:
    yield CounterMetricFamily(
        f"{PREFIX}_storage_retries",
        "Storage attempts of ingest that failed and were retried.",
        value=status.storage_retries,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_storage_paused",
        "1 while ingest waits for the database to work again, else 0.",
        value=1 if status.storage_paused else 0,
    )
    if database is None:
        return
    yield GaugeMetricFamily(
        f"{PREFIX}_database_up",
        "1 when SELECT 1 worked at this scrape, else 0.",
        value=1 if database.up else 0,
    )
    if database.current_offers is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_current_offers",
            "Current offers that have not expired, of every cluster.",
            value=database.current_offers,
        )


def _router_metrics(router: RequestRouter) -> Iterator[Metric]:
    routed = CounterMetricFamily(
        f"{PREFIX}_requests_routed",
        "Capacity requests published to their owner's topic, and topics of final ones cleared.",
        labels=["action"],
    )
    routed.add_metric(["published"], router.published_requests)
    routed.add_metric(["cleared"], router.cleared_requests)
    yield routed


def _notifier_metrics(notifier: RequestNotifier) -> Iterator[Metric]:
    yield CounterMetricFamily(
        f"{PREFIX}_request_emails_sent",
        "E-mails about capacity requests sent.",
        value=notifier.sent_mails,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_request_email_failures",
        "Sends of e-mails about capacity requests that failed; each is retried or given up.",
        value=notifier.failed_attempts,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_request_emails_abandoned",
        "E-mails about capacity requests given up after the last failed attempt.",
        value=notifier.abandoned_mails,
    )
