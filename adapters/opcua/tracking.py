"""The machines the adapter follows on one server, and the statuses it reports for them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from adapters.base import MachineStatus
from adapters.opcua.machinery import MachineNodes
from adapters.opcua.readings import Reading
from adapters.opcua.settings import OpcUaSettings, default_resource_id
from kooperant.protocol import MachineState

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class TrackedMachine:
    """A machine found on the server in this session, with the resource id it is reported as."""

    resource: str
    nodes: MachineNodes
    # The last reading of each state variable in this session, keyed like ``nodes.values``.
    readings: dict[str, Reading] = field(default_factory=dict)


def assign_resources(settings: OpcUaSettings, machines: list[MachineNodes]) -> list[TrackedMachine]:
    """Assign a resource id to each machine, logging machines that get none or a taken one."""
    tracked: dict[str, TrackedMachine] = {}
    for machine in machines:
        # A machine of the explicit node mapping carries its resource id from the settings.
        resource = (
            machine.resource
            or settings.machines.get(machine.browse_name)
            or default_resource_id(machine.browse_name)
        )
        if resource is None:
            _LOGGER.error(
                "%s: machine %r has no letter or digit to build a resource id from; "
                "map it under machines in the adapter settings",
                settings.url,
                machine.browse_name,
            )
        elif resource in tracked:
            _LOGGER.error(
                "%s: machines %r and %r both map to resource %r; the second is ignored. "
                "Map one of them under machines in the adapter settings",
                settings.url,
                tracked[resource].nodes.browse_name,
                machine.browse_name,
                resource,
            )
        else:
            tracked[resource] = TrackedMachine(resource, machine)

    browse_names = {machine.browse_name for machine in machines}
    for browse_name in sorted(set(settings.machines) - browse_names):
        _LOGGER.warning(
            "%s: machines.%s in the adapter settings matches no machine; found: %s",
            settings.url,
            browse_name,
            ", ".join(sorted(browse_names)) or "none",
        )

    return list(tracked.values())


class PendingMachines:
    """Machines with readings taken since their state was last resolved.

    The readings of one publish response are taken one by one, and each machine's state is
    resolved once after them, so a response with 20 changes of one machine costs one resolution.
    """

    def __init__(self) -> None:
        self._machines: dict[str, TrackedMachine] = {}
        self.waiting = asyncio.Event()

    def add(self, machine: TrackedMachine) -> None:
        """Mark ``machine`` as having new readings."""
        self._machines[machine.resource] = machine
        self.waiting.set()

    def take(self) -> list[TrackedMachine]:
        """Return the marked machines in the order they were first marked, and clear them."""
        machines = list(self._machines.values())
        self._machines.clear()
        self.waiting.clear()
        return machines


class MachineStatuses:
    """The last status of every machine, as ``collect()`` reports it."""

    def __init__(self) -> None:
        self._statuses: dict[str, MachineStatus] = {}

    def sorted(self) -> list[MachineStatus]:
        """Return the statuses sorted by resource id."""
        return [self._statuses[resource] for resource in sorted(self._statuses)]

    def keep_only(self, resources: set[str]) -> list[str]:
        """Forget the machines not in ``resources`` and return their sorted resource ids."""
        removed = sorted(set(self._statuses) - resources)
        for resource in removed:
            del self._statuses[resource]
        return removed

    def set_state(self, machine: TrackedMachine, state: MachineState, since: datetime) -> bool:
        """Store the machine's status and return True when its state changed.

        ``since`` is used only for a changed state, because an unchanged one keeps its ``since``.
        """
        previous = self._statuses.get(machine.resource)
        changed = previous is None or previous.state != state
        if (
            not changed
            and previous is not None
            and previous.name == machine.nodes.display_name
            and previous.identification == machine.nodes.identification
        ):
            return False
        if previous is not None:
            # A state cannot begin before the previous one was stored, whatever the timestamps.
            since = previous.since if not changed else max(since, previous.since)
        self._statuses[machine.resource] = MachineStatus(
            resource=machine.resource,
            state=state,
            since=since,
            name=machine.nodes.display_name,
            identification=dict(machine.nodes.identification),
        )
        return changed

    def mark_unknown(self, now: datetime) -> bool:
        """Mark every machine UNKNOWN since ``now``, and return True when any state changed."""
        changed = False
        for resource, status in self._statuses.items():
            if status.state is not MachineState.UNKNOWN:
                self._statuses[resource] = MachineStatus(
                    resource=status.resource,
                    state=MachineState.UNKNOWN,
                    since=now,
                    name=status.name,
                    identification=status.identification,
                )
                changed = True
        return changed
