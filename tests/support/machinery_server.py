"""An in-process OPC UA server built from the official DI and Machinery NodeSet2 files.

``machinery_server`` imports OPC 10000-100 (DI) and then OPC 40001-1 (Machinery), and places one
object per ``MachineSpec`` in the ``Machines`` folder. Each machine has an ``Identification`` of
``MachineIdentificationType`` and a ``MachineryBuildingBlocks`` folder containing a
``MachineryItemState`` of ``MachineryItemState_StateMachineType`` and, where the spec asks, a
``MachineryOperationMode``. Only the types come from the files, so the address space looks like a
vendor server rather than like the demo park.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from asyncua import Node, Server, ua

from kooperant.demo.machine_park import add_object_node
from kooperant.net import free_tcp_port

DI_URI = "http://opcfoundation.org/UA/DI/"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
TEST_URI = "urn:kooperant:test:machinery-server"

DI_NODESET = Path("DI") / "Opc.Ua.Di.NodeSet2.xml"
MACHINERY_NODESET = Path("Machinery") / "Opc.Ua.Machinery.NodeSet2.xml"

# NodeIds inside the Machinery namespace, from Opc.Ua.Machinery.NodeSet2.xml 1.03.0.
MACHINES_FOLDER_ID = 1001
MACHINE_IDENTIFICATION_TYPE_ID = 1012
ITEM_STATE_MACHINE_TYPE_ID = 1002
STATE_OBJECT_IDS = {
    "NotAvailable": (5005, 0),
    "OutOfService": (5004, 1),
    "NotExecuting": (5007, 2),
    "Executing": (5006, 3),
}
OPERATION_MODE_MACHINE_TYPE_ID = 1008
OPERATION_MODE_OBJECT_IDS = {
    "None": (5024, 0),
    "Maintenance": (5025, 1),
    "Setup": (5027, 2),
    "Processing": (5026, 3),
}


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """One machine to create: its browse name and identification values."""

    browse_name: str
    manufacturer: str
    model: str
    serial_number: str
    state: str = "NotExecuting"
    # Where set, the machine also gets a MachineryOperationMode in this mode.
    operation_mode: str | None = None


DEFAULT_MACHINES = (
    MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing"),
    MachineSpec("Lathe B2", "Mazak", "QTU 250", "MZ-2502", "NotExecuting"),
)


class MachineryTestServer:
    """A running server: its endpoint and a way to change machine states."""

    def __init__(self, server: Server, endpoint: str, machinery_index: int) -> None:
        self.server = server
        self.endpoint = endpoint
        self.machinery_index = machinery_index
        self.state_nodes: dict[str, Node] = {}
        self.mode_nodes: dict[str, Node] = {}

    @property
    def machines(self) -> list[str]:
        """Browse names of the machines, in creation order."""
        return list(self.state_nodes)

    async def set_state(self, machine: str, state: str) -> None:
        """Write CurrentState text, its Id (the state object of the type) and its Number."""
        object_id, number = STATE_OBJECT_IDS[state]
        current_state = self.state_nodes[machine]
        id_node = await current_state.get_child("0:Id")
        number_node = await current_state.get_child("0:Number")

        await id_node.write_value(
            ua.Variant(ua.NodeId(object_id, self.machinery_index), ua.VariantType.NodeId)
        )
        await number_node.write_value(ua.Variant(number, ua.VariantType.UInt32))
        await current_state.write_value(
            ua.Variant(ua.LocalizedText(state, "en"), ua.VariantType.LocalizedText)
        )

    async def set_operation_mode(self, machine: str, mode: str) -> None:
        """Write MachineryOperationMode/CurrentState text, its Id and its Number."""
        object_id, number = OPERATION_MODE_OBJECT_IDS[mode]
        current_state = self.mode_nodes[machine]
        id_node = await current_state.get_child("0:Id")
        number_node = await current_state.get_child("0:Number")

        await id_node.write_value(
            ua.Variant(ua.NodeId(object_id, self.machinery_index), ua.VariantType.NodeId)
        )
        await number_node.write_value(ua.Variant(number, ua.VariantType.UInt32))
        await current_state.write_value(
            ua.Variant(ua.LocalizedText(mode, "en"), ua.VariantType.LocalizedText)
        )


@asynccontextmanager
async def machinery_server(
    nodesets_dir: Path,
    machines: Sequence[MachineSpec] = DEFAULT_MACHINES,
    *,
    port: int | None = None,
    extra_namespaces: Sequence[str] = (),
    before_start: Callable[[Server], Awaitable[None]] | None = None,
) -> AsyncIterator[MachineryTestServer]:
    """Run a Machinery server on 127.0.0.1 and yield it; ``port=None`` picks a free port.

    ``extra_namespaces`` are registered before the nodesets are imported, which moves DI and
    Machinery to higher namespace indexes than on a server without them. ``before_start`` is
    awaited with the server just before it starts listening, to set up security for example.
    """
    for relative in (DI_NODESET, MACHINERY_NODESET):
        if not (nodesets_dir / relative).is_file():
            raise FileNotFoundError(f"nodeset file not found: {nodesets_dir / relative}")
    endpoint = f"opc.tcp://127.0.0.1:{port if port is not None else free_tcp_port()}"

    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name("kooperant test Machinery server")
    for uri in extra_namespaces:
        await server.register_namespace(uri)

    # The import prints warnings about DI data types it cannot classify; they do not matter here.
    logging.getLogger("asyncua.common.xmlimporter").setLevel(logging.ERROR)
    await server.import_xml(str(nodesets_dir / DI_NODESET))
    await server.import_xml(str(nodesets_dir / MACHINERY_NODESET))
    await server.load_data_type_definitions()

    test_server = MachineryTestServer(
        server, endpoint, await server.get_namespace_index(MACHINERY_URI)
    )
    for spec in machines:
        await _add_machine(server, test_server, spec)

    if before_start is not None:
        await before_start(server)
    async with server:
        yield test_server


async def _add_machine(server: Server, test_server: MachineryTestServer, spec: MachineSpec) -> None:
    di = await server.get_namespace_index(DI_URI)
    machinery = test_server.machinery_index
    own = await server.register_namespace(TEST_URI)
    machines_folder = server.get_node(ua.NodeId(MACHINES_FOLDER_ID, machinery))

    machine = await add_object_node(
        machines_folder, ua.NodeId(spec.browse_name, own), ua.QualifiedName(spec.browse_name, own)
    )
    identification = await machine.add_object(
        ua.NodeId(f"{spec.browse_name}.Identification", own),
        ua.QualifiedName("Identification", di),
        objecttype=ua.NodeId(MACHINE_IDENTIFICATION_TYPE_ID, machinery),
    )
    for name, text in (("Manufacturer", spec.manufacturer), ("Model", spec.model)):
        variable = await identification.get_child(ua.QualifiedName(name, di))
        await variable.write_value(ua.Variant(ua.LocalizedText(text), ua.VariantType.LocalizedText))
    serial = await identification.get_child(ua.QualifiedName("SerialNumber", di))
    await serial.write_value(ua.Variant(spec.serial_number, ua.VariantType.String))

    building_blocks = await machine.add_folder(
        ua.NodeId(f"{spec.browse_name}.MachineryBuildingBlocks", own),
        ua.QualifiedName("MachineryBuildingBlocks", machinery),
    )
    item_state = await building_blocks.add_object(
        ua.NodeId(f"{spec.browse_name}.MachineryItemState", own),
        ua.QualifiedName("MachineryItemState", machinery),
        objecttype=ua.NodeId(ITEM_STATE_MACHINE_TYPE_ID, machinery),
    )
    current_state = await item_state.get_child("0:CurrentState")
    # Number is optional in StateVariableType; asyncua does not instantiate it with the type.
    await current_state.add_property(
        ua.NodeId(f"{spec.browse_name}.MachineryItemState.CurrentState.Number", own),
        ua.QualifiedName("Number", 0),
        ua.Variant(0, ua.VariantType.UInt32),
    )
    test_server.state_nodes[spec.browse_name] = current_state
    await test_server.set_state(spec.browse_name, spec.state)
    if spec.operation_mode is not None:
        await _add_operation_mode(building_blocks, test_server, spec, own)


async def _add_operation_mode(
    building_blocks: Node, test_server: MachineryTestServer, spec: MachineSpec, own: int
) -> None:
    machinery = test_server.machinery_index
    operation_mode = await building_blocks.add_object(
        ua.NodeId(f"{spec.browse_name}.MachineryOperationMode", own),
        ua.QualifiedName("MachineryOperationMode", machinery),
        objecttype=ua.NodeId(OPERATION_MODE_MACHINE_TYPE_ID, machinery),
    )
    current_state = await operation_mode.get_child("0:CurrentState")
    await current_state.add_property(
        ua.NodeId(f"{spec.browse_name}.MachineryOperationMode.CurrentState.Number", own),
        ua.QualifiedName("Number", 0),
        ua.Variant(0, ua.VariantType.UInt32),
    )
    test_server.mode_nodes[spec.browse_name] = current_state
    assert spec.operation_mode is not None
    await test_server.set_operation_mode(spec.browse_name, spec.operation_mode)
