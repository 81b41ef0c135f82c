"""The adapters that report each resource id, conflicts between them, and readiness of one.

Several adapters may report one resource when their observations complete each other: an OPC UA
server gives a machine's state and the production plan its orders. They conflict when the
resource would be two kinds at once (a warehouse code and a machine id that slug to the same
id), or when two adapters report amounts of the same resource (a stock list and a JPK_MAG file
both with ``bl-dc01-1.5``), because the offer would then mix two sources' figures, price and
suppliers. The agent logs each conflict once and ``kooperant agent check`` lists it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters.base import (
    Adapter,
    ConnectionState,
    MachineStatus,
    Observation,
    ResourceAmounts,
    ScheduledWork,
    SupplyStock,
)
from kooperant.protocol import ResourceKind


@dataclass(frozen=True, slots=True)
class ResourceConflict:
    """A resource id that several adapters report in ways that do not add up."""

    resource: str
    adapters: tuple[str, ...]
    kinds: tuple[str, ...]

    def message(self) -> str:
        adapters = ", ".join(repr(name) for name in self.adapters)
        if len(self.kinds) > 1:
            problem = f"as different kinds ({', '.join(self.kinds)})"
        else:
            problem = f"each with its own {self.kinds[0]} amounts, which would be mixed"
        return (
            f"resource {self.resource!r} is reported by the adapters {adapters} {problem}; give "
            "one of them another id in its settings (items, warehouses, machines or teams)"
        )


class ResourceSources:
    """The kinds each adapter reported per resource in one collection."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, set[ResourceKind]]] = defaultdict(dict)

    def add(self, adapter: str, observations: Iterable[Observation]) -> None:
        for observation in observations:
            kinds = self._kinds[observation.resource].setdefault(adapter, set())
            kinds.add(_kind_of(observation))

    def conflicts(self) -> tuple[ResourceConflict, ...]:
        """Return the resources reported as two kinds, or with amounts by two adapters."""
        found = []
        for resource, by_adapter in sorted(self._kinds.items()):
            if len(by_adapter) < 2:
                continue
            kinds = set().union(*by_adapter.values())
            with_amounts = [
                adapter
                for adapter, reported in by_adapter.items()
                if reported - {ResourceKind.MACHINE}
            ]
            if len(kinds) > 1 or len(with_amounts) > 1:
                found.append(
                    ResourceConflict(
                        resource,
                        tuple(sorted(by_adapter)),
                        tuple(sorted(kind.value for kind in kinds)),
                    )
                )
        return tuple(found)


def _kind_of(observation: Observation) -> ResourceKind:
    if isinstance(observation, MachineStatus | ScheduledWork):
        return ResourceKind.MACHINE
    if isinstance(observation, ResourceAmounts):
        return observation.kind
    assert isinstance(observation, SupplyStock)
    return ResourceKind.SUPPLIES


def has_answered(adapter: Adapter[Any]) -> bool:
    """Return whether a source of ``adapter`` was read (even if empty) or failed with an error."""
    try:
        sources = adapter.health()
    except Exception:
        # The status endpoint logs a broken health report; here it only means "no answer yet".
        return False
    for source in sources:
        if source.state is ConnectionState.CONNECTED and source.last_data is not None:
            return True
        if source.state is ConnectionState.DISCONNECTED and source.detail is not None:
            return True
    return False
