"""Reading the OPC 40001 Machinery address space: namespaces, machines, identification, state.

Every node is resolved through its namespace URI, because servers assign namespace indexes in
different orders. Browse names are matched by name only: vendors place ``Identification`` and
``MachineryItemState`` in the DI, the Machinery or their own namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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

IDENTIFICATION_FIELDS = ("Manufacturer", "Model", "SerialNumber")

_STATE_BY_NAME = {state.value: state for state in MachineState if state is not MachineState.UNKNOWN}
_STATE_BY_NUMBER = {
    0: MachineState.NOT_AVAILABLE,
    1: MachineState.OUT_OF_SERVICE,
    2: MachineState.NOT_EXECUTING,
    3: MachineState.EXECUTING,
}


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


@dataclass(slots=True)
class MachineNodes:
    """The nodes of one machine that the adapter reads, and its identification values."""

    browse_name: str
    display_name: str
    identification: dict[str, str]
    current_state: Node | None = None
    state_id: Node | None = None
    state_number: Node | None = None
    # Latest values of CurrentState, CurrentState/Id and CurrentState/Number.
    values: dict[str, object] = field(default_factory=dict)

    def state_nodes(self) -> dict[str, Node]:
        """Return the state variables present on this machine, keyed by their role."""
        nodes = {"text": self.current_state, "id": self.state_id, "number": self.state_number}
        return {role: node for role, node in nodes.items() if node is not None}


async def machinery_namespace_index(client: Client, url: str) -> int:
    """Return the index of the Machinery namespace on this server."""
    namespaces = await client.get_namespace_array()
    if MACHINERY_URI not in namespaces:
        raise ServerConfigurationError(
            f"OPC UA server {url} has no Machinery namespace ({MACHINERY_URI}); load the "
            "OPC 40001 Machinery model on the server or point url at a Machinery server"
        )
    return namespaces.index(MACHINERY_URI)


async def browse_machines(
    client: Client, machinery: int, url: str, limits: OperationLimits = NO_LIMITS
) -> list[MachineNodes]:
    """Browse the ``Machines`` folder and return each machine's nodes and identification.

    Reads stay within ``limits``. The default assumes that the server has none.
    """
    folder = client.get_node(node_id(MACHINES_FOLDER_ID, machinery))
    try:
        await folder.read_browse_name()
    except UaStatusCodeError as error:
        raise ServerConfigurationError(
            f"OPC UA server {url} has no Machines folder (i={MACHINES_FOLDER_ID} in "
            f"{MACHINERY_URI}, index {machinery} on this server): {error}; instantiate the "
            "machines in the Machines folder of OPC 40001 on the server"
        ) from error

    machines = []
    for description in await _child_objects(folder):
        machines.append(await _read_machine(client, description, machinery, limits))
    return machines


async def _read_machine(
    client: Client, description: ua.ReferenceDescription, machinery: int, limits: OperationLimits
) -> MachineNodes:
    node = client.get_node(description.NodeId)
    components = {item.BrowseName.Name: item for item in await _child_objects(node)}
    machine = MachineNodes(
        browse_name=description.BrowseName.Name,
        display_name=description.DisplayName.Text or description.BrowseName.Name,
        identification={},
    )

    identification = components.get("Identification")
    if identification is not None:
        machine.identification = await _read_identification(
            client, client.get_node(identification.NodeId), limits
        )

    state_machine = await _find_item_state(client, components, machinery)
    if state_machine is not None:
        machine.current_state = await _optional_child(state_machine, "CurrentState")
    if machine.current_state is not None:
        machine.state_id = await _optional_child(machine.current_state, "Id")
        machine.state_number = await _optional_child(machine.current_state, "Number")
    return machine


async def _find_item_state(
    client: Client, components: dict[str, ua.ReferenceDescription], machinery: int
) -> Node | None:
    """Find the MachineryItemState below the machine or below its MachineryBuildingBlocks."""
    state_type = node_id(ITEM_STATE_MACHINE_TYPE_ID, machinery)
    candidates = list(components.values())
    building_blocks = components.get("MachineryBuildingBlocks")
    if building_blocks is not None:
        candidates += await _child_objects(client.get_node(building_blocks.NodeId))

    for candidate in candidates:
        type_definition = candidate.TypeDefinition
        if (type_definition.Identifier, type_definition.NamespaceIndex) == (
            state_type.Identifier,
            state_type.NamespaceIndex,
        ):
            return client.get_node(candidate.NodeId)
    for candidate in candidates:
        if candidate.BrowseName.Name == "MachineryItemState":
            return client.get_node(candidate.NodeId)
    return None


async def _read_identification(
    client: Client, identification: Node, limits: OperationLimits
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
    if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
        return None
    if data_value.Value is None:
        return None
    value = data_value.Value.Value
    if value is None:
        return None
    if isinstance(value, ua.LocalizedText):
        return value.Text
    return str(value)


def data_value_content(data_value: ua.DataValue) -> object:
    """Return the value of a good DataValue, or None."""
    if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
        return None
    return None if data_value.Value is None else data_value.Value.Value


async def _child_objects(node: Node) -> Sequence[ua.ReferenceDescription]:
    descriptions: Sequence[ua.ReferenceDescription] = await node.get_children_descriptions(
        refs=ObjectIds.HierarchicalReferences, nodeclassmask=ua.NodeClass.Object
    )
    return descriptions


async def _optional_child(node: Node, name: str) -> Node | None:
    for description in await node.get_children_descriptions(
        refs=ObjectIds.HierarchicalReferences, nodeclassmask=ua.NodeClass.Variable
    ):
        if description.BrowseName.Name == name:
            return Node(node.session, description.NodeId)
    return None


class StateResolver:
    """Map CurrentState values to a ``MachineState``, caching the browse names of state objects.

    Precedence: the browse name of the node that ``CurrentState/Id`` points to, then the text of
    ``CurrentState``, then ``CurrentState/Number``. Anything else is ``MachineState.UNKNOWN``.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._state_names: dict[ua.NodeId, str | None] = {}

    async def resolve(self, values: dict[str, object]) -> MachineState:
        """Return the state for the ``text``, ``id`` and ``number`` values of one machine."""
        state_id = values.get("id")
        if isinstance(state_id, ua.NodeId) and not state_id.is_null():
            name = await self._state_name(state_id)
            if name in _STATE_BY_NAME:
                return _STATE_BY_NAME[name]

        text = values.get("text")
        if isinstance(text, ua.LocalizedText) and text.Text in _STATE_BY_NAME:
            return _STATE_BY_NAME[text.Text]

        number = values.get("number")
        if isinstance(number, int) and number in _STATE_BY_NUMBER:
            return _STATE_BY_NUMBER[number]
        return MachineState.UNKNOWN

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
