"""Reading the OPC 40001 Machinery address space: namespaces, machines, identification, state.

``MachineNodes`` describes one machine of any companion model; ``adapters.opcua.models`` finds
the machines of the other models and maps their state variables.

Every node is resolved through its namespace URI, because servers assign namespace indexes in
different orders. Browse names are matched by name only: vendors place ``Identification`` and
``MachineryItemState`` in the DI, the Machinery or their own namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaStatusCodeError

from adapters.errors import SourceUnavailableError
from adapters.opcua.limits import NO_LIMITS, OperationLimits, read_values
from kooperant.protocol import MachineState

DI_URI = "http://opcfoundation.org/UA/DI/"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"

# NodeIds in the Machinery namespace, fixed by OPC 40001-1.
MACHINES_FOLDER_ID = 1001
ITEM_STATE_MACHINE_TYPE_ID = 1002
OPERATION_MODE_MACHINE_TYPE_ID = 1008

IDENTIFICATION_FIELDS = ("Manufacturer", "Model", "SerialNumber")


def node_id(identifier: int | str, namespace: int = 0) -> ua.NodeId:
    """Build a NodeId; asyncua annotates its fields with marker subclasses of int and str."""
    key = ua.Int32(identifier) if isinstance(identifier, int) else ua.String(identifier)
    return ua.NodeId(key, ua.Int16(namespace))


class ServerConfigurationError(SourceUnavailableError):
    """Raised when a server responds but cannot serve the adapter as configured.

    Causes: no Machinery namespace, no ``Machines`` folder, or rejected credentials. The operator
    must act; the adapter still retries at the reconnect cadence because a server may load its
    information model some time after it starts listening.
    """


class NoMachineryError(ServerConfigurationError):
    """Raised when a server has no Machinery namespace and no machine of another model."""


class NoMachinesFolderError(ServerConfigurationError):
    """Raised when a server has the Machinery namespace but no ``Machines`` folder."""


class CompanionModel(StrEnum):
    """The information model a machine was found through, which decides how its state is read."""

    MACHINERY = "machinery"
    MACHINE_TOOL = "machine_tool"
    PACKML = "packml"
    EUROMAP83 = "euromap83"
    MAPPING = "mapping"


@dataclass(slots=True)
class MachineNodes:
    """The nodes of one machine that the adapter reads, and its identification values.

    ``variables`` maps a role to a state variable. A state machine's ``CurrentState`` has the role
    of the state machine (``item_state``), and its ``Id`` and ``Number`` that role with ``.id``
    and ``.number`` appended. ``values`` contains the latest value per role.
    """

    browse_name: str
    display_name: str
    identification: dict[str, str]
    model: CompanionModel = CompanionModel.MACHINERY
    variables: dict[str, Node] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)
    # Set for machines of the explicit mapping, whose resource id the settings fix.
    resource: str | None = None
    # Value-to-state rules of an explicitly mapped variable (role ``value``).
    rules: StateRules | None = None

    def state_nodes(self) -> dict[str, Node]:
        """Return the state variables present on this machine, keyed by their role."""
        return dict(self.variables)

    async def add_state_machine(self, role: str, state_machine: Node) -> bool:
        """Add ``CurrentState`` of ``state_machine`` and its ``Id`` and ``Number`` under ``role``.

        Returns False when the state machine has no ``CurrentState``.
        """
        current_state = await optional_child(state_machine, "CurrentState")
        if current_state is None:
            return False
        self.variables[role] = current_state
        for name, suffix in (("Id", ".id"), ("Number", ".number")):
            child = await optional_child(current_state, name)
            if child is not None:
                self.variables[role + suffix] = child
        return True


class StateRules(Protocol):
    """Value-to-state rules of one variable, implemented by the explicit mapping settings."""

    def state_for(self, value: object) -> MachineState:
        """Return the state for ``value``."""
        ...


async def machines_folder(client: Client, machinery: int, url: str) -> Node:
    """Return the ``Machines`` folder, or raise ``ServerConfigurationError`` when it is absent."""
    folder = client.get_node(node_id(MACHINES_FOLDER_ID, machinery))
    try:
        await folder.read_browse_name()
    except UaStatusCodeError as error:
        raise NoMachinesFolderError(
            f"OPC UA server {url} has no Machines folder (i={MACHINES_FOLDER_ID} in "
            f"{MACHINERY_URI}, index {machinery} on this server): {error}; instantiate the "
            "machines in the Machines folder of OPC 40001 on the server"
        ) from error
    return folder


async def add_machinery_states(
    client: Client,
    machine: MachineNodes,
    components: dict[str, ua.ReferenceDescription],
    machinery: int | None,
) -> None:
    """Add ``MachineryItemState`` and ``MachineryOperationMode`` where the machine has them.

    Both are looked for below the machine and below its ``MachineryBuildingBlocks``, first by
    type and then by browse name. A type derived from the Machinery one, such as the operation
    mode state machine of OPC 40501, is found by its browse name.
    """
    candidates = list(components.values())
    building_blocks = components.get("MachineryBuildingBlocks")
    if building_blocks is not None:
        candidates += await child_objects(client.get_node(building_blocks.NodeId))

    searches = (
        ("item_state", ITEM_STATE_MACHINE_TYPE_ID, "MachineryItemState"),
        ("operation_mode", OPERATION_MODE_MACHINE_TYPE_ID, "MachineryOperationMode"),
    )
    for role, type_id, browse_name in searches:
        state_machine = _find_state_machine(candidates, machinery, type_id, browse_name)
        if state_machine is not None:
            await machine.add_state_machine(role, client.get_node(state_machine.NodeId))


def _find_state_machine(
    candidates: list[ua.ReferenceDescription], machinery: int | None, type_id: int, name: str
) -> ua.ReferenceDescription | None:
    if machinery is not None:
        for candidate in candidates:
            type_definition = candidate.TypeDefinition
            if (type_definition.Identifier, type_definition.NamespaceIndex) == (type_id, machinery):
                return candidate
    for candidate in candidates:
        if candidate.BrowseName.Name == name:
            return candidate
    return None


async def read_identification(
    client: Client, identification: Node, limits: OperationLimits = NO_LIMITS
) -> dict[str, str]:
    """Read Manufacturer, Model and SerialNumber, skipping absent, null and bad values."""
    variables = {
        description.BrowseName.Name: client.get_node(description.NodeId)
        for description in await identification.get_children_descriptions(
            refs=ObjectIds.HierarchicalReferences, nodeclassmask=ua.NodeClass.Variable
        )
        if description.BrowseName.Name in IDENTIFICATION_FIELDS
    }
    names = [name for name in IDENTIFICATION_FIELDS if name in variables]
    data_values = await read_values(client, [variables[name] for name in names], limits)

    values = {}
    for name, data_value in zip(names, data_values, strict=True):
        text = value_text(data_value)
        if text:
            values[name] = text
    return values


def value_text(data_value: ua.DataValue) -> str | None:
    """Return a variable's value as text, or None when it is null or its status is not good."""
    return content_text(data_value_content(data_value))


def content_text(value: object) -> str | None:
    """Return a value read from a variable as text, or None when it is null."""
    if value is None:
        return None
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.NodeId):
        return value.to_string()
    return str(value)


def data_value_content(data_value: ua.DataValue) -> object:
    """Return the value of a good DataValue, or None."""
    if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
        return None
    return None if data_value.Value is None else data_value.Value.Value


async def child_objects(node: Node) -> Sequence[ua.ReferenceDescription]:
    """Return the objects below ``node`` through hierarchical references."""
    descriptions: Sequence[ua.ReferenceDescription] = await node.get_children_descriptions(
        refs=ObjectIds.HierarchicalReferences, nodeclassmask=ua.NodeClass.Object
    )
    return descriptions


async def optional_child(node: Node, name: str) -> Node | None:
    """Return the variable below ``node`` whose browse name is ``name``, in any namespace."""
    for description in await node.get_children_descriptions(
        refs=ObjectIds.HierarchicalReferences, nodeclassmask=ua.NodeClass.Variable
    ):
        if description.BrowseName.Name == name:
            return Node(node.session, description.NodeId)
    return None


async def object_at(node: Node, *names: str) -> Node | None:
    """Return the object at the end of a path of browse names in any namespace, or None."""
    current = node
    for name in names:
        found = [item for item in await child_objects(current) if item.BrowseName.Name == name]
        if not found:
            return None
        current = Node(node.session, found[0].NodeId)
    return current
