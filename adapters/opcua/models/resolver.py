"""Turning the latest values of a machine's state variables into a ``MachineState``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaStatusCodeError

from adapters.opcua.machinery import CompanionModel, MachineNodes
from adapters.opcua.models.rules import (
    StateNames,
    euromap83_state,
    machine_tool_state,
    machinery_state,
    packml_state,
)
from kooperant.protocol import MachineState

_RULES: dict[CompanionModel, Callable[[Mapping[str, object], StateNames], MachineState]] = {
    CompanionModel.MACHINERY: machinery_state,
    CompanionModel.MACHINE_TOOL: machine_tool_state,
    CompanionModel.PACKML: packml_state,
    CompanionModel.EUROMAP83: euromap83_state,
}


class StateResolver:
    """Map a machine's values to a ``MachineState``, caching the browse names of state objects."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._state_names: dict[ua.NodeId, str | None] = {}

    async def resolve(self, machine: MachineNodes) -> MachineState:
        """Return the state of ``machine`` from ``machine.values`` by the rules of its model."""
        if machine.rules is not None:
            return machine.rules.state_for(machine.values.get("value"))

        names: dict[ua.NodeId, str | None] = {}
        # A copy, because readings may replace values while a browse name is read.
        for role, value in list(machine.values.items()):
            if role.endswith(".id") and isinstance(value, ua.NodeId) and not value.is_null():
                names[value] = await self._state_name(value)
        return _RULES[machine.model](machine.values, names)

    async def _state_name(self, state_id: ua.NodeId) -> str | None:
        if state_id not in self._state_names:
            try:
                browse_name = await self._client.get_node(state_id).read_browse_name()
            except UaStatusCodeError:
                # An Id that points at no node maps like a missing Id.
                self._state_names[state_id] = None
            else:
                self._state_names[state_id] = browse_name.Name
        return self._state_names[state_id]
