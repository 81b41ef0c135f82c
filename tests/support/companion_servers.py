"""In-process OPC UA servers of the companion models, built from the official NodeSet2 files.

``machine_tool_server`` imports DI, IA, Machinery, MachineTool 1.01.1 and its official example,
which places two machine tools in the ``Machines`` folder. The first also gets a production plan
with one job. ``packml_server`` imports PackML and places a PackML object two levels below
``Objects``. ``euromap83_server`` imports DI, Machinery and EUROMAP 83 (PlasticsRubber
GeneralTypes 1.03) and creates one injection moulding machine below ``Objects`` and one in the
``Machines`` folder. Each server writes state values the way a vendor server would: the
``CurrentState`` text, its ``Id`` (the state object of the type) and, where present, ``Number``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from asyncua import Node, Server, ua

from kooperant.net import free_tcp_port

DI_URI = "http://opcfoundation.org/UA/DI/"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
MACHINE_TOOL_URI = "http://opcfoundation.org/UA/MachineTool/"
EXAMPLE_URI = "http://yourorganisation.org/MachineTool-Example/"
PACKML_URI = "http://opcfoundation.org/UA/PackML/"
EUROMAP83_URI = "http://opcfoundation.org/UA/PlasticsRubber/GeneralTypes/"
TEST_URI = "urn:kooperant:test:companion-server"

DI_NODESET = Path("DI") / "Opc.Ua.Di.NodeSet2.xml"
IA_NODESET = Path("IA") / "Opc.Ua.IA.NodeSet2.xml"
MACHINERY_NODESET = Path("Machinery") / "Opc.Ua.Machinery.NodeSet2.xml"
PACKML_NODESET = Path("PackML") / "Opc.Ua.PackML.NodeSet2.xml"
EUROMAP83_NODESET = (
    Path("PlasticsRubber")
    / "GeneralTypes"
    / "1.03"
    / "Opc.Ua.PlasticsRubber.GeneralTypes.NodeSet2.xml"
)
MACHINE_TOOL_FOLDER = Path("..") / "machinetool-1.01.1-with-example"
MACHINE_TOOL_NODESET = MACHINE_TOOL_FOLDER / "Opc.Ua.MachineTool.NodeSet2.xml"
MACHINE_TOOL_EXAMPLE = MACHINE_TOOL_FOLDER / "Machinetool-Example.xml"

# State objects of ProductionProgramStateMachineType and ProductionJobStateMachineType
# (MachineTool namespace): state name → (NodeId, state number).
PROGRAM_STATES = {
    "Initializing": (5039, 0),
    "Running": (5041, 1),
    "Ended": (5038, 2),
    "Interrupted": (5040, 3),
    "Aborted": (5037, 4),
}
JOB_STATES = {
    "Initializing": (5015, 0),
    "Running": (5017, 1),
    "Ended": (5014, 2),
    "Interrupted": (5016, 3),
    "Aborted": (5013, 4),
}
# MachineryItemState_StateMachineType (Machinery namespace) and the operation mode state machine
# of MachineTool 1.01.1 (MachineTool namespace).
ITEM_STATES = {
    "NotAvailable": (5005, 0),
    "OutOfService": (5004, 1),
    "NotExecuting": (5007, 2),
    "Executing": (5006, 3),
}
TOOL_OPERATION_MODES = {"None": 5059, "Maintenance": 5058, "Setup": 5061, "Processing": 5060}
# Example instance NodeIds (example namespace): machine → role → CurrentState or variable.
EXAMPLE_NODES = {
    "SampleMachineTool": {"machine_tool_mode": 6004, "program": 6007},
    "SampleMachineTool_v101": {
        "machine_tool_mode": 6025,
        "program": 6028,
        "item_state": 6032,
        "operation_mode": 6079,
    },
}
MACHINE_TOOL_PRODUCTION = {"SampleMachineTool": 5007}
PRODUCTION_JOB_LIST_TYPE_ID = 30
PRODUCTION_JOB_TYPE_ID = 29

# PackML state objects (PackML namespace) per state machine level.
PACKML_STATES = {
    "base_state": {"Aborting": (61, 8), "Aborted": (62, 9), "Cleared": (71, 19)},
    "machine_state": {
        "Clearing": (55, 1),
        "Stopped": (53, 2),
        "Stopping": (54, 7),
        "Running": (75, 18),
    },
    "execute_state": {
        "Resetting": (27, 15),
        "Idle": (28, 4),
        "Starting": (29, 3),
        "Suspending": (30, 13),
        "Suspended": (31, 5),
        "Unsuspending": (32, 14),
        "Holding": (33, 10),
        "Held": (34, 11),
        "Unholding": (35, 12),
        "Execute": (36, 6),
        "Completing": (37, 16),
        "Complete": (38, 17),
    },
}
PACKML_BASE_OBJECT_TYPE_ID = 6

EUROMAP83_MACHINE_STATUS_TYPE_ID = 1019
EUROMAP83_MES_STATUS_TYPE_ID = 1020
EUROMAP83_MACHINE_INFORMATION_TYPE_ID = 1009
MACHINES_FOLDER_ID = 1001


def _check_files(nodesets_dir: Path, files: Sequence[Path]) -> None:
    for relative in files:
        if not (nodesets_dir / relative).is_file():
            raise FileNotFoundError(f"nodeset file not found: {nodesets_dir / relative}")


async def _started(nodesets_dir: Path, files: Sequence[Path], name: str) -> tuple[Server, str]:
    _check_files(nodesets_dir, files)
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name(name)
    # The import warns about data types it cannot classify; they do not matter here.
    logging.getLogger("asyncua.common.xmlimporter").setLevel(logging.ERROR)
    for relative in files:
        await server.import_xml(str(nodesets_dir / relative))
    await server.load_data_type_definitions()
    return server, endpoint


async def _write_state(
    current_state: Node, text: str, state_id: ua.NodeId, number: int | None
) -> None:
    """Write Id and Number before the text, so the state is whole when the text changes."""
    id_node = await current_state.get_child("0:Id")
    await id_node.write_value(ua.Variant(state_id, ua.VariantType.NodeId))
    if number is not None:
        try:
            number_node = await current_state.get_child("0:Number")
        except ua.UaStatusCodeError:
            number_node = None
        if number_node is not None:
            await number_node.write_value(ua.Variant(number, ua.VariantType.UInt32))
    await current_state.write_value(
        ua.Variant(ua.LocalizedText(text, "en"), ua.VariantType.LocalizedText)
    )


class MachineToolTestServer:
    """The MachineTool example server and ways to change its machines' state variables."""

    def __init__(self, server: Server, endpoint: str) -> None:
        self.server = server
        self.endpoint = endpoint
        self.job_state: Node | None = None

    async def _index(self, uri: str) -> int:
        return await self.server.get_namespace_index(uri)

    async def _example_node(self, machine: str, role: str) -> Node:
        index = await self._index(EXAMPLE_URI)
        return self.server.get_node(ua.NodeId(EXAMPLE_NODES[machine][role], index))

    async def set_tool_mode(self, machine: str, mode: int) -> None:
        """Write Monitoring/MachineTool/OperationMode (MachineOperationMode enumeration)."""
        node = await self._example_node(machine, "machine_tool_mode")
        await node.write_value(ua.Variant(mode, ua.VariantType.Int32))

    async def set_program_state(self, machine: str, state: str) -> None:
        """Write Production/ActiveProgram/State/CurrentState."""
        object_id, number = PROGRAM_STATES[state]
        state_id = ua.NodeId(object_id, await self._index(MACHINE_TOOL_URI))
        await _write_state(await self._example_node(machine, "program"), state, state_id, number)

    async def set_job_state(self, state: str) -> None:
        """Write the state of the production job added to SampleMachineTool."""
        assert self.job_state is not None
        object_id, number = JOB_STATES[state]
        state_id = ua.NodeId(object_id, await self._index(MACHINE_TOOL_URI))
        await _write_state(self.job_state, state, state_id, number)

    async def set_item_state(self, machine: str, state: str) -> None:
        """Write MachineryItemState/CurrentState of SampleMachineTool_v101."""
        object_id, number = ITEM_STATES[state]
        state_id = ua.NodeId(object_id, await self._index(MACHINERY_URI))
        await _write_state(await self._example_node(machine, "item_state"), state, state_id, number)

    async def set_operation_mode(self, machine: str, mode: str) -> None:
        """Write MachineryOperationMode/CurrentState of SampleMachineTool_v101."""
        state_id = ua.NodeId(TOOL_OPERATION_MODES[mode], await self._index(MACHINE_TOOL_URI))
        node = await self._example_node(machine, "operation_mode")
        await _write_state(node, mode, state_id, None)

    async def add_production_job(self) -> None:
        """Add Production/ProductionPlan with one job in state Initializing to SampleMachineTool."""
        tool = await self._index(MACHINE_TOOL_URI)
        own = await self.server.register_namespace(TEST_URI)
        example = await self._index(EXAMPLE_URI)
        production = self.server.get_node(
            ua.NodeId(MACHINE_TOOL_PRODUCTION["SampleMachineTool"], example)
        )
        plan = await production.add_object(
            ua.NodeId("SampleMachineTool.ProductionPlan", own),
            ua.QualifiedName("ProductionPlan", tool),
            objecttype=ua.NodeId(PRODUCTION_JOB_LIST_TYPE_ID, tool),
        )
        job = await plan.add_object(
            ua.NodeId("SampleMachineTool.Job1", own),
            ua.QualifiedName("Job1", own),
            objecttype=ua.NodeId(PRODUCTION_JOB_TYPE_ID, tool),
        )
        state = await job.get_child(ua.QualifiedName("State", tool))
        self.job_state = await state.get_child("0:CurrentState")
        await self.set_job_state("Initializing")


@asynccontextmanager
async def machine_tool_server(nodesets_dir: Path) -> AsyncIterator[MachineToolTestServer]:
    """Run the MachineTool 1.01.1 example server on 127.0.0.1 with one production job."""
    files = (
        DI_NODESET,
        IA_NODESET,
        MACHINERY_NODESET,
        MACHINE_TOOL_NODESET,
        MACHINE_TOOL_EXAMPLE,
    )
    server, endpoint = await _started(nodesets_dir, files, "kooperant test MachineTool server")
    test_server = MachineToolTestServer(server, endpoint)
    await test_server.add_production_job()
    async with server:
        yield test_server


class PackMLTestServer:
    """A server with one PackML object, ``Line1/Filler``, and a way to change its state."""

    def __init__(self, server: Server, endpoint: str, filler: Node) -> None:
        self.server = server
        self.endpoint = endpoint
        self.filler = filler

    async def _current_state(self, role: str) -> Node:
        path = {
            "base_state": ["BaseStateMachine"],
            "machine_state": ["BaseStateMachine", "MachineState"],
            "execute_state": ["BaseStateMachine", "MachineState", "ExecuteState"],
        }[role]
        packml = await self.server.get_namespace_index(PACKML_URI)
        names = [ua.QualifiedName(name, packml) for name in path]
        return await self.filler.get_child([*names, ua.QualifiedName("CurrentState", 0)])

    async def set_state(self, role: str, state: str) -> None:
        """Write the current state of one level: base_state, machine_state or execute_state."""
        object_id, number = PACKML_STATES[role][state]
        packml = await self.server.get_namespace_index(PACKML_URI)
        await _write_state(
            await self._current_state(role), state, ua.NodeId(object_id, packml), number
        )

    async def set_states(self, base: str, machine: str, execute: str) -> None:
        """Write the three levels, innermost first, as a PackML controller moves them."""
        await self.set_state("execute_state", execute)
        await self.set_state("machine_state", machine)
        await self.set_state("base_state", base)

    async def set_unit_mode(self, mode: int) -> None:
        """Write Status/UnitModeCurrent (ProductionMaintenanceModeEnum)."""
        packml = await self.server.get_namespace_index(PACKML_URI)
        node = await self.filler.get_child(
            [ua.QualifiedName("Status", packml), ua.QualifiedName("UnitModeCurrent", packml)]
        )
        await node.write_value(ua.Variant(mode, ua.VariantType.Int32))


@asynccontextmanager
async def packml_server(nodesets_dir: Path) -> AsyncIterator[PackMLTestServer]:
    """Run a PackML server on 127.0.0.1 with ``Objects/Line1/Filler`` idle in Produce mode."""
    server, endpoint = await _started(nodesets_dir, (PACKML_NODESET,), "kooperant test PackML")
    packml = await server.get_namespace_index(PACKML_URI)
    own = await server.register_namespace(TEST_URI)
    line = await server.nodes.objects.add_folder(
        ua.NodeId("Line1", own), ua.QualifiedName("Line1", own)
    )
    filler = await line.add_object(
        ua.NodeId("Line1.Filler", own),
        ua.QualifiedName("Filler", own),
        objecttype=ua.NodeId(PACKML_BASE_OBJECT_TYPE_ID, packml),
    )
    test_server = PackMLTestServer(server, endpoint, filler)
    await test_server.set_unit_mode(1)
    await test_server.set_states("Cleared", "Running", "Idle")
    async with server:
        yield test_server


class Euromap83TestServer:
    """Injection moulding machines of EUROMAP 83 and ways to change their status variables."""

    def __init__(self, server: Server, endpoint: str) -> None:
        self.server = server
        self.endpoint = endpoint
        self.machines: dict[str, Node] = {}

    async def _variable(self, machine: str, *path: str) -> Node:
        general = await self.server.get_namespace_index(EUROMAP83_URI)
        names = [ua.QualifiedName(name, general) for name in path]
        return await self.machines[machine].get_child(names)

    async def set_present(self, machine: str, present: bool) -> None:
        node = await self._variable(machine, "MachineStatus", "IsPresent")
        await node.write_value(ua.Variant(present, ua.VariantType.Boolean))

    async def set_machine_mode(self, machine: str, mode: int) -> None:
        node = await self._variable(machine, "MachineStatus", "MachineMode")
        await node.write_value(ua.Variant(mode, ua.VariantType.Int32))

    async def set_production_status(self, machine: str, status: int) -> None:
        node = await self._variable(
            machine, "MachineMESStatus", "ProductionControl", "ProductionStatus"
        )
        await node.write_value(ua.Variant(status, ua.VariantType.Int32))


async def _add_imm(
    server: Server, parent: Node, name: str, manufacturer: str, serial_number: str
) -> Node:
    general = await server.get_namespace_index(EUROMAP83_URI)
    di = await server.get_namespace_index(DI_URI)
    own = await server.register_namespace(TEST_URI)
    machine = await parent.add_object(ua.NodeId(name, own), ua.QualifiedName(name, own))
    information = await machine.add_object(
        ua.NodeId(f"{name}.MachineInformation", own),
        ua.QualifiedName("MachineInformation", general),
        objecttype=ua.NodeId(EUROMAP83_MACHINE_INFORMATION_TYPE_ID, general),
    )
    manufacturer_node = await information.get_child(ua.QualifiedName("Manufacturer", di))
    await manufacturer_node.write_value(
        ua.Variant(ua.LocalizedText(manufacturer), ua.VariantType.LocalizedText)
    )
    serial = await information.get_child(ua.QualifiedName("SerialNumber", di))
    await serial.write_value(ua.Variant(serial_number, ua.VariantType.String))
    await machine.add_object(
        ua.NodeId(f"{name}.MachineStatus", own),
        ua.QualifiedName("MachineStatus", general),
        objecttype=ua.NodeId(EUROMAP83_MACHINE_STATUS_TYPE_ID, general),
    )
    await machine.add_object(
        ua.NodeId(f"{name}.MachineMESStatus", own),
        ua.QualifiedName("MachineMESStatus", general),
        objecttype=ua.NodeId(EUROMAP83_MES_STATUS_TYPE_ID, general),
    )
    return machine


@asynccontextmanager
async def euromap83_server(nodesets_dir: Path) -> AsyncIterator[Euromap83TestServer]:
    """Run a EUROMAP 83 server: ``Objects/Hall/IMM-07`` and ``Machines/IMM-08``, both producing."""
    files = (DI_NODESET, MACHINERY_NODESET, EUROMAP83_NODESET)
    server, endpoint = await _started(nodesets_dir, files, "kooperant test EUROMAP 83 server")
    own = await server.register_namespace(TEST_URI)
    machinery = await server.get_namespace_index(MACHINERY_URI)
    hall = await server.nodes.objects.add_folder(
        ua.NodeId("Hall", own), ua.QualifiedName("Hall", own)
    )
    machines_folder = server.get_node(ua.NodeId(MACHINES_FOLDER_ID, machinery))

    test_server = Euromap83TestServer(server, endpoint)
    test_server.machines["IMM-07"] = await _add_imm(server, hall, "IMM-07", "Engel", "E-7007")
    test_server.machines["IMM-08"] = await _add_imm(
        server, machines_folder, "IMM-08", "Arburg", "A-8008"
    )
    for name in test_server.machines:
        await test_server.set_present(name, True)
        await test_server.set_machine_mode(name, 1)
        await test_server.set_production_status(name, 4)
    async with server:
        yield test_server
