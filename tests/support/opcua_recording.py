"""A recording adapter context, views of an OPC UA adapter's statuses and health, and waiting.

The ``running_adapters`` fixture that builds adapters on these is in ``tests/adapters/conftest.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import AdapterContext, ConnectionState, MachineStatus, SourceHealth
from adapters.opcua import OpcUaAdapter
from kooperant.protocol import MachineState

# Reconnect delays short enough for tests that stop and start servers.
FAST_RECONNECT = {"reconnect_min_seconds": 0.1, "reconnect_max_seconds": 0.3}


class Recorder:
    """An AdapterContext whose notify_changed counts calls."""

    def __init__(self) -> None:
        self.notifications = 0
        self.context = AdapterContext(
            member="test-member",
            timezone=ZoneInfo("Europe/Warsaw"),
            config_dir=Path("."),
            notify_changed=self._notify,
            clock=lambda: datetime.now(UTC),
        )

    def _notify(self) -> None:
        self.notifications += 1


def statuses(adapter: OpcUaAdapter) -> dict[str, MachineStatus]:
    """Return the adapter's current machine statuses by resource id."""
    result = {}
    for observation in adapter.collect():
        assert isinstance(observation, MachineStatus)
        result[observation.resource] = observation
    return result


def has_state(adapter: OpcUaAdapter, resource: str, state: MachineState) -> Callable[[], bool]:
    """Return a condition: the adapter reports ``resource`` in ``state``."""
    return lambda: resource in statuses(adapter) and statuses(adapter)[resource].state is state


def server_health(adapter: OpcUaAdapter) -> SourceHealth:
    """Return the health of the adapter's one server."""
    [health] = adapter.health()
    return health


def in_state(adapter: OpcUaAdapter, state: ConnectionState) -> Callable[[], bool]:
    """Return a condition: the adapter's connection is in ``state``."""
    return lambda: server_health(adapter).state is state


async def wait_until(condition: Callable[[], bool], within_seconds: float = 10.0) -> float:
    """Wait until ``condition`` is true and return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within_seconds:
            raise AssertionError(f"condition not met within {within_seconds} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def expect_state(adapter: OpcUaAdapter, resource: str, state: MachineState) -> None:
    """Wait until ``resource`` reports ``state``; the message shows what it reports instead."""
    try:
        await wait_until(has_state(adapter, resource, state))
    except AssertionError:
        found = {key: status.state.value for key, status in statuses(adapter).items()}
        raise AssertionError(f"{resource} never became {state.value}; reported: {found}") from None
