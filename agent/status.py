"""The agent's status document: its broker connection and the health of each adapter's sources.

``AgentStatus`` describes the running agent; ``status_document`` turns it into the
JSON that the local endpoint serves (``agent/status_http.py``) and ``kooperant agent status``
prints (``agent/status_cli.py``). The document's ``schema`` field names its version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adapters.base import Adapter, SourceHealth
from kooperant import __version__

logger = logging.getLogger(__name__)

STATUS_SCHEMA = "kooperant.agent-status/1"


@dataclass(frozen=True, slots=True)
class AdapterStatus:
    """One adapter: whether it started, what it reported last and the health of its sources."""

    name: str
    type_name: str
    started: bool
    observations: int
    collect_failing: bool
    sources: tuple[SourceHealth, ...]
    collect_failures: int = 0
    """Calls of ``collect()`` that raised in this run."""
    last_collected_at: datetime | None = None
    """When ``collect()`` last returned, or ``None`` before it did once."""


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """The store-and-forward queue: what waits for the broker and what was lost on the way."""

    queued_messages: int | None
    """``None`` when the queue could not be read."""
    queued_bytes: int | None
    oldest_queued_at: datetime | None
    dropped_messages: int
    """Messages this run dropped to keep the queue within its limits."""
    rejected_messages: int
    """Messages the broker rejected in this run (MQTT 5 reason code), dropped from the queue."""


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """Capacity requests: open (not decided, not expired), held, and invalid ones dropped."""

    open: int
    held: int
    invalid: int
    """Invalid request messages dropped in this run."""


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """The running agent at ``now``: the broker url carries no password."""

    member: str
    cluster: str
    now: datetime
    started_at: datetime
    broker_url: str
    broker_connected: bool
    published_messages: int
    broker_failed_attempts: int
    policy_error: str | None
    adapters: tuple[AdapterStatus, ...]
    outbox: OutboxStatus | None = None
    requests: RequestCounts | None = None
    last_cycle_at: datetime | None = None
    """When the run loop last finished a cycle, or ``None`` before the first."""
    publish_interval_seconds: float | None = None
    """The maximum wait between two cycles, ``publish_interval_seconds`` of the config."""


def adapter_status(
    adapter: Adapter[Any],
    type_name: str,
    *,
    started: bool,
    observations: int,
    collect_failing: bool,
    collect_failures: int = 0,
    last_collected_at: datetime | None = None,
) -> AdapterStatus:
    """Return the status of ``adapter``, with no sources when its health report fails."""
    try:
        sources = tuple(adapter.health())
    except Exception:
        # The status endpoint must respond even when an adapter's health report is broken.
        logger.exception("Adapter %s failed to report its health", adapter.name)
        sources = ()
    return AdapterStatus(
        adapter.name,
        type_name,
        started,
        observations,
        collect_failing,
        sources,
        collect_failures,
        last_collected_at,
    )


def status_document(status: AgentStatus) -> dict[str, Any]:
    """Return ``status`` as a JSON-ready mapping, times in ISO 8601 with their offset."""
    return {
        "schema": STATUS_SCHEMA,
        "version": __version__,
        "member": status.member,
        "cluster": status.cluster,
        "now": status.now.isoformat(),
        "started_at": status.started_at.isoformat(),
        "broker": {
            "url": status.broker_url,
            "connected": status.broker_connected,
            "published_messages": status.published_messages,
            "failed_attempts": status.broker_failed_attempts,
        },
        "outbox": None if status.outbox is None else _outbox_document(status.outbox, status.now),
        "policy_error": status.policy_error,
        "adapters": [_adapter_document(adapter) for adapter in status.adapters],
        "requests": None if status.requests is None else _requests_document(status.requests),
        "last_cycle_at": _optional_time(status.last_cycle_at),
        "publish_interval_seconds": status.publish_interval_seconds,
    }


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _requests_document(requests: RequestCounts) -> dict[str, int]:
    return {"open": requests.open, "held": requests.held, "invalid": requests.invalid}


def _outbox_document(outbox: OutboxStatus, now: datetime) -> dict[str, Any]:
    oldest = outbox.oldest_queued_at
    return {
        "queued_messages": outbox.queued_messages,
        "queued_bytes": outbox.queued_bytes,
        "oldest_queued_at": None if oldest is None else oldest.isoformat(),
        "oldest_queued_age_seconds": None if oldest is None else (now - oldest).total_seconds(),
        "dropped_messages": outbox.dropped_messages,
        "rejected_messages": outbox.rejected_messages,
    }


def _adapter_document(adapter: AdapterStatus) -> dict[str, Any]:
    return {
        "name": adapter.name,
        "type": adapter.type_name,
        "started": adapter.started,
        "observations": adapter.observations,
        "collect_failing": adapter.collect_failing,
        "collect_failures": adapter.collect_failures,
        "last_collected_at": _optional_time(adapter.last_collected_at),
        "sources": [_source_document(source) for source in adapter.sources],
    }


def _source_document(source: SourceHealth) -> dict[str, Any]:
    document: dict[str, Any] = {
        "source": source.source,
        "state": source.state.value,
        "since": source.since.isoformat(),
        "reconnects": source.reconnects,
        "last_data": None if source.last_data is None else source.last_data.isoformat(),
        "errors": dict(sorted(source.errors.items())),
        "detail": source.detail,
        "stale": source.stale,
    }
    if source.detail_code is not None:
        document["detail_code"] = source.detail_code
        document["detail_values"] = dict(source.detail_values)
    return document
