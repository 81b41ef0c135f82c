"""The agent's health check behind ``GET /healthz`` of the local status endpoint.

The agent is healthy while its run loop cycles, its policy file is valid and its outbox can be
read. Each of these failing means the agent no longer publishes what the owner configured, and
only a person or a restart can change that:

- ``loop``: no cycle finished for ``2 × publish_interval_seconds + STALL_GRACE_SECONDS``. The
  loop runs a cycle at least every ``publish_interval_seconds``, so a longer gap means it hangs.
- ``policy``: the policy file's current content is invalid. The agent publishes under the last
  valid version meanwhile, which differs from the file's content.
- ``outbox``: the store-and-forward queue (an SQLite file) cannot be read, so no message can be
  queued for sending.

A broker that is down, a source that is disconnected and an adapter that fails are reported in
the body but keep the status 200. The outbox carries the agent through a broker outage and the
adapters reconnect by themselves, so restarting the agent would not help. A monitoring system
should alert on the metrics (``kooperant_agent_broker_connected``, the age of the oldest queued
message, ``kooperant_agent_sources``) over a time window instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from agent.status import AgentStatus

STALL_GRACE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class AgentHealth:
    """The result of the health check: whether the agent is healthy and the JSON body."""

    healthy: bool
    document: dict[str, Any]


def agent_health(status: AgentStatus) -> AgentHealth:
    """Check the run loop, policy and outbox of ``status``; report the broker and sources."""
    checks = {
        "loop": _loop_problem(status),
        "policy": None if status.policy_error is None else f"invalid: {status.policy_error}",
        "outbox": _outbox_problem(status),
    }
    healthy = all(problem is None for problem in checks.values())
    document = {
        "status": "ok" if healthy else "failing",
        "checks": {name: problem or "ok" for name, problem in checks.items()},
        "broker": "connected" if status.broker_connected else "disconnected",
        "sources": _source_states(status),
        "adapters_failing": sorted(
            adapter.name
            for adapter in status.adapters
            if not adapter.started or adapter.collect_failing
        ),
    }
    return AgentHealth(healthy, document)


def stall_limit_seconds(status: AgentStatus) -> float | None:
    """Return the longest gap between cycles that counts as healthy, or ``None`` if unknown."""
    if status.publish_interval_seconds is None:
        return None
    return 2 * status.publish_interval_seconds + STALL_GRACE_SECONDS


def _loop_problem(status: AgentStatus) -> str | None:
    limit = stall_limit_seconds(status)
    if limit is None:
        return None
    # Before the first cycle the adapters are starting, which the limit covers as well.
    last = status.last_cycle_at or status.started_at
    gap = (status.now - last).total_seconds()
    if gap <= limit:
        return None
    return f"stalled: no cycle finished for {gap:.0f} s, the limit is {limit:.0f} s"


def _outbox_problem(status: AgentStatus) -> str | None:
    if status.outbox is not None and status.outbox.queued_messages is None:
        return "unreadable: the outbox file cannot be read; see the agent's log"
    return None


def _source_states(status: AgentStatus) -> dict[str, int]:
    states = Counter(
        source.state.value for adapter in status.adapters for source in adapter.sources
    )
    return dict(sorted(states.items()))
