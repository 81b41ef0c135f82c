"""Prometheus metrics of the running agent, served at ``GET /metrics`` of the status endpoint.

``AgentCollector`` reads the agent's status (``agent.status.AgentStatus``) at each scrape, so
the figures are the counters and states the agent keeps anyway and nothing is counted twice.
Each endpoint has its own ``CollectorRegistry``, not the process-wide default, so that several
agents in one process (as in the tests) do not collide. Label values are adapter names, source
names (without credentials), connection states and error names, all bounded by the config.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from adapters.base import ConnectionState
from agent.status import AdapterStatus, AgentStatus
from kooperant import __version__

PREFIX = "kooperant_agent"


class AgentCollector(Collector):
    """Turns the status that ``read_status`` returns into metric families at each scrape."""

    def __init__(self, read_status: Callable[[], AgentStatus]) -> None:
        self._read_status = read_status

    def collect(self) -> Iterator[Metric]:
        status = self._read_status()
        yield from _process_metrics(status)
        yield from _broker_metrics(status)
        yield from _outbox_metrics(status)
        yield from _adapter_metrics(status.adapters)
        yield from _source_metrics(status.adapters)
        yield from _request_metrics(status)


def metrics_registry(read_status: Callable[[], AgentStatus]) -> CollectorRegistry:
    """Return a registry of its own holding an ``AgentCollector`` over ``read_status``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(read_status))
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """Return the metrics of ``registry`` in the Prometheus text format 0.0.4."""
    return generate_latest(registry)


def _process_metrics(status: AgentStatus) -> Iterator[Metric]:
    info = InfoMetricFamily(f"{PREFIX}_build", "The agent's version.")
    info.add_metric([], {"version": __version__})
    yield info
    yield GaugeMetricFamily(
        f"{PREFIX}_start_time_seconds",
        "When the agent started, as Unix time.",
        value=status.started_at.timestamp(),
    )
    if status.last_cycle_at is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_last_cycle_timestamp_seconds",
            "When the run loop last finished a cycle, as Unix time.",
            value=status.last_cycle_at.timestamp(),
        )
    yield GaugeMetricFamily(
        f"{PREFIX}_policy_valid",
        "1 while the policy file's content is valid, 0 while the agent uses an older version.",
        value=1 if status.policy_error is None else 0,
    )


def _broker_metrics(status: AgentStatus) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"{PREFIX}_broker_connected",
        "1 while the agent is connected to the MQTT broker, else 0.",
        value=1 if status.broker_connected else 0,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_broker_connect_failures",
        "Connection attempts to the MQTT broker that failed, and connections lost.",
        value=status.broker_failed_attempts,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_messages_published",
        "Messages the broker acknowledged (PUBACK) in this run.",
        value=status.published_messages,
    )


def _outbox_metrics(status: AgentStatus) -> Iterator[Metric]:
    outbox = status.outbox
    if outbox is None:
        return
    yield CounterMetricFamily(
        f"{PREFIX}_messages_dropped",
        "Queued messages dropped in this run to keep the outbox within its limits.",
        value=outbox.dropped_messages,
    )
    yield CounterMetricFamily(
        f"{PREFIX}_messages_rejected",
        "Messages the broker rejected with an MQTT 5 reason code in this run.",
        value=outbox.rejected_messages,
    )
    if outbox.queued_messages is None or outbox.queued_bytes is None:
        # The outbox file cannot be read; /healthz reports it, and no number would be true.
        return
    yield GaugeMetricFamily(
        f"{PREFIX}_outbox_messages",
        "Messages waiting in the outbox for the broker.",
        value=outbox.queued_messages,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_outbox_bytes",
        "Payload bytes waiting in the outbox.",
        value=outbox.queued_bytes,
    )
    oldest = outbox.oldest_queued_at
    age = 0.0 if oldest is None else max(0.0, (status.now - oldest).total_seconds())
    yield GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_age_seconds",
        "Age of the oldest message in the outbox; 0 when the outbox is empty.",
        value=age,
    )


def _adapter_metrics(adapters: tuple[AdapterStatus, ...]) -> Iterator[Metric]:
    started = GaugeMetricFamily(
        f"{PREFIX}_adapter_started", "1 when the adapter started, else 0.", labels=["adapter"]
    )
    observations = GaugeMetricFamily(
        f"{PREFIX}_adapter_observations",
        "Observations the adapter returned at its last collection.",
        labels=["adapter"],
    )
    failures = CounterMetricFamily(
        f"{PREFIX}_adapter_collect_failures",
        "Collections that raised an error in this run.",
        labels=["adapter"],
    )
    collected = GaugeMetricFamily(
        f"{PREFIX}_adapter_last_collect_timestamp_seconds",
        "When the adapter's last successful collection ended, as Unix time.",
        labels=["adapter"],
    )
    for adapter in adapters:
        started.add_metric([adapter.name], 1 if adapter.started else 0)
        observations.add_metric([adapter.name], adapter.observations)
        failures.add_metric([adapter.name], adapter.collect_failures)
        if adapter.last_collected_at is not None:
            collected.add_metric([adapter.name], adapter.last_collected_at.timestamp())
    yield from (started, observations, failures, collected)


def _source_metrics(adapters: tuple[AdapterStatus, ...]) -> Iterator[Metric]:
    states = GaugeMetricFamily(
        f"{PREFIX}_sources",
        "Sources of the adapter (such as OPC UA servers) in each connection state.",
        labels=["adapter", "state"],
    )
    reconnects = CounterMetricFamily(
        f"{PREFIX}_source_reconnects",
        "Connections to the source made again after a loss.",
        labels=["adapter", "source"],
    )
    errors = CounterMetricFamily(
        f"{PREFIX}_source_errors",
        "Failures and flagged readings of the source, by the adapter's error name.",
        labels=["adapter", "source", "error"],
    )
    last_data = GaugeMetricFamily(
        f"{PREFIX}_source_last_data_timestamp_seconds",
        "When the source last delivered a value, as Unix time.",
        labels=["adapter", "source"],
    )
    stale = GaugeMetricFamily(
        f"{PREFIX}_source_stale",
        "1 while the data in use is older than the adapter's configured limit, else 0.",
        labels=["adapter", "source"],
    )
    for adapter in adapters:
        counts = Counter(source.state for source in adapter.sources)
        for state in ConnectionState:
            states.add_metric([adapter.name, state.value], counts[state])
        for source in adapter.sources:
            labels = [adapter.name, source.source]
            reconnects.add_metric(labels, source.reconnects)
            stale.add_metric(labels, 1 if source.stale else 0)
            if source.last_data is not None:
                last_data.add_metric(labels, source.last_data.timestamp())
            for name, count in sorted(source.errors.items()):
                errors.add_metric([*labels, name], count)
    yield from (states, reconnects, errors, last_data, stale)


def _request_metrics(status: AgentStatus) -> Iterator[Metric]:
    requests = status.requests
    if requests is None:
        return
    current = GaugeMetricFamily(
        f"{PREFIX}_capacity_requests",
        "Capacity requests: open (not decided, not expired) and held (accepted, holding capacity).",
        labels=["state"],
    )
    current.add_metric(["open"], requests.open)
    current.add_metric(["held"], requests.held)
    yield current
    yield CounterMetricFamily(
        f"{PREFIX}_capacity_requests_invalid",
        "Invalid capacity request messages dropped in this run.",
        value=requests.invalid,
    )
