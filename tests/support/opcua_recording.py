"""A recording adapter context and a view of an OPC UA adapter's machine statuses, for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import AdapterContext, MachineStatus
from adapters.opcua import OpcUaAdapter


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
