"""A simulated machine park: an OPC UA server shaped like OPC 40001 Machinery, built in code.

The demo must run without the OPC Foundation NodeSet2 files, so this module builds the few nodes
the OPC UA adapter reads by hand. It registers the real DI and Machinery namespace URIs, so a client
resolves them exactly as on a vendor server:

    Objects
    └── Machines                      ns=<Machinery>;i=1001, FolderType
        └── <machine>                 organized by Machines
            ├── Identification        DI browse name, with DI Manufacturer, Model, SerialNumber
            └── MachineryBuildingBlocks
                └── MachineryItemState    of MachineryItemState_StateMachineType
                    └── CurrentState      LocalizedText, with properties Id and Number

The type ``MachineryItemState_StateMachineType`` (ns=<Machinery>;i=1002) is recreated as a subtype
of FiniteStateMachineType with its four state objects at the NodeIds that OPC 40001-1 1.03 gives
them, so ``CurrentState/Id`` points at the same nodes as on a server that imported the nodeset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from types import TracebackType

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds

from adapters.opcua.machinery import (
    DI_URI,
    ITEM_STATE_MACHINE_TYPE_ID,
    MACHINERY_URI,
    MACHINES_FOLDER_ID,
    node_id,
)
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState

_LOGGER = logging.getLogger(__name__)

PARK_URI = "urn:kooperant:demo:machine-park"

# State object NodeIds (in the Machinery namespace) and state numbers, from OPC 40001-1 1.03.
STATE_OBJECTS: dict[MachineState, tuple[int, int]] = {
    MachineState.NOT_AVAILABLE: (5005, 0),
    MachineState.OUT_OF_SERVICE: (5004, 1),
    MachineState.NOT_EXECUTING: (5007, 2),
    MachineState.EXECUTING: (5006, 3),
}

# How often the simulation picks each state: mostly working or idle, now and then out of service.
STATE_WEIGHTS: dict[MachineState, float] = {
    MachineState.EXECUTING: 0.55,
    MachineState.NOT_EXECUTING: 0.35,
    MachineState.OUT_OF_SERVICE: 0.10,
}


@dataclass(frozen=True, slots=True)
class SimulatedMachine:
    """One machine of the park: browse name, identification and the state it starts in."""

    browse_name: str
    manufacturer: str
    model: str
    serial_number: str
    initial_state: MachineState


PARK_MACHINES = (
    SimulatedMachine("CNC-5AX-01", "DMG MORI", "DMU 50", "DMU50-2019-0412", MachineState.EXECUTING),
    SimulatedMachine(
        "LASER-02", "Trumpf", "TruLaser 3030", "TL3030-A17-118", MachineState.NOT_EXECUTING
    ),
    SimulatedMachine("PRESS-03", "Amada", "HG 1303", "HG1303-0098", MachineState.EXECUTING),
)


class MachinePark:
    """An OPC UA server with simulated machines whose states change over time.

    Use it as an async context manager. On entry the server listens on ``endpoint``; on exit the
    simulation stops and the server shuts down.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        change_interval_seconds: float = 5.0,
        seed: int | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}: use 1 to 65535, or 0 for a free port")
        if change_interval_seconds <= 0:
            raise ValueError(
                f"invalid change_interval_seconds {change_interval_seconds}: use a number of "
                "seconds greater than zero"
            )
        self.host = host
        self.port = port if port != 0 else free_tcp_port(host)
        self.endpoint = f"opc.tcp://{host}:{self.port}"
        self.machines = [machine.browse_name for machine in PARK_MACHINES]
        self.change_interval_seconds = change_interval_seconds
        self._random = random.Random(seed)
        self._server: Server | None = None
        self._machinery_index = 0
        self._current_states: dict[str, Node] = {}
        self._simulation: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MachinePark:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("kooperant demo machine park")
        await self._build_address_space(server)

        await server.start()
        self._server = server
        self._simulation = asyncio.create_task(self._simulate(), name="machine-park-simulation")
        _LOGGER.info(
            "machine park listening on %s with %d machines", self.endpoint, len(self.machines)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._simulation is not None:
            self._simulation.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._simulation
            self._simulation = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        _LOGGER.info("machine park on %s stopped", self.endpoint)

    async def set_state(self, machine: str, state: MachineState) -> None:
        """Write ``state`` to the machine's CurrentState, with its Id and Number."""
        if state not in STATE_OBJECTS:
            raise ValueError(f"invalid state {state!r} for machine {machine!r}")
        current_state = self._current_states.get(machine)
        if current_state is None:
            raise KeyError(f"machine {machine!r} not found; the park has {self.machines}")
        object_id, number = STATE_OBJECTS[state]

        id_node = await current_state.get_child("0:Id")
        number_node = await current_state.get_child("0:Number")
        await id_node.write_value(
            ua.Variant(node_id(object_id, self._machinery_index), ua.VariantType.NodeId)
        )
        await number_node.write_value(ua.Variant(number, ua.VariantType.UInt32))
        await current_state.write_value(
            ua.Variant(ua.LocalizedText(state.value, "en"), ua.VariantType.LocalizedText)
        )

    async def _simulate(self) -> None:
        states = list(STATE_WEIGHTS)
        weights = list(STATE_WEIGHTS.values())
        while True:
            await asyncio.sleep(self.change_interval_seconds)
            machine = self._random.choice(self.machines)
            state = self._random.choices(states, weights)[0]
            await self.set_state(machine, state)
            _LOGGER.debug("machine park: %s is now %s", machine, state.value)

    async def _build_address_space(self, server: Server) -> None:
        di = await server.register_namespace(DI_URI)
        self._machinery_index = await server.register_namespace(MACHINERY_URI)
        park = await server.register_namespace(PARK_URI)

        state_machine_type = await self._add_state_machine_type(server, park)
        machines_folder = await add_object_node(
            server.nodes.objects,
            node_id(MACHINES_FOLDER_ID, self._machinery_index),
            ua.QualifiedName("Machines", self._machinery_index),
            type_definition=ObjectIds.FolderType,
        )
        for machine in PARK_MACHINES:
            await self._add_machine(machines_folder, state_machine_type, machine, di, park)

    async def _add_state_machine_type(self, server: Server, park: int) -> Node:
        machinery = self._machinery_index
        finite_state_machine_type = server.get_node(node_id(ObjectIds.FiniteStateMachineType))
        state_machine_type = await finite_state_machine_type.add_object_type(
            node_id(ITEM_STATE_MACHINE_TYPE_ID, machinery),
            ua.QualifiedName("MachineryItemState_StateMachineType", machinery),
        )
        for state, (object_id, number) in STATE_OBJECTS.items():
            state_object = await add_object_node(
                state_machine_type,
                node_id(object_id, machinery),
                ua.QualifiedName(state.value, machinery),
                type_definition=ObjectIds.StateType,
                reference_type=ObjectIds.HasComponent,
            )
            await state_object.add_property(
                node_id(f"{state.value}.StateNumber", park),
                ua.QualifiedName("StateNumber", 0),
                ua.Variant(number, ua.VariantType.UInt32),
            )
        return state_machine_type

    async def _add_machine(
        self,
        machines_folder: Node,
        state_machine_type: Node,
        machine: SimulatedMachine,
        di: int,
        park: int,
    ) -> None:
        name = machine.browse_name
        node = await add_object_node(
            machines_folder, node_id(name, park), ua.QualifiedName(name, park)
        )

        identification = await node.add_object(
            node_id(f"{name}.Identification", park), ua.QualifiedName("Identification", di)
        )
        for field, text in (("Manufacturer", machine.manufacturer), ("Model", machine.model)):
            await identification.add_property(
                node_id(f"{name}.Identification.{field}", park),
                ua.QualifiedName(field, di),
                ua.Variant(ua.LocalizedText(text), ua.VariantType.LocalizedText),
            )
        await identification.add_property(
            node_id(f"{name}.Identification.SerialNumber", park),
            ua.QualifiedName("SerialNumber", di),
            ua.Variant(machine.serial_number, ua.VariantType.String),
        )

        building_blocks = await node.add_folder(
            node_id(f"{name}.MachineryBuildingBlocks", park),
            ua.QualifiedName("MachineryBuildingBlocks", self._machinery_index),
        )
        item_state = await building_blocks.add_object(
            node_id(f"{name}.MachineryItemState", park),
            ua.QualifiedName("MachineryItemState", self._machinery_index),
            objecttype=state_machine_type.nodeid,
            instantiate_optional=False,
        )
        current_state = await item_state.get_child("0:CurrentState")
        await current_state.add_property(
            node_id(f"{name}.MachineryItemState.CurrentState.Number", park),
            ua.QualifiedName("Number", 0),
            ua.Variant(0, ua.VariantType.UInt32),
        )
        self._current_states[name] = current_state
        await self.set_state(name, machine.initial_state)


async def add_object_node(
    parent: Node,
    nodeid: ua.NodeId,
    browse_name: ua.QualifiedName,
    *,
    type_definition: int = ObjectIds.BaseObjectType,
    reference_type: int = ObjectIds.Organizes,
) -> Node:
    """Add one object below ``parent`` without instantiating the children of its type.

    asyncua's ``add_object`` always links with HasComponent and gives the children of the type
    generated NodeIds, which can collide with the fixed NodeIds this module assigns. OPC 40001
    links machines to the ``Machines`` folder with Organizes.
    """
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = nodeid
    item.BrowseName = browse_name
    item.NodeClass = ua.NodeClass.Object
    item.ParentNodeId = parent.nodeid
    item.ReferenceTypeId = node_id(reference_type)
    item.TypeDefinition = node_id(type_definition)
    attributes = ua.ObjectAttributes()
    attributes.DisplayName = ua.LocalizedText(browse_name.Name)
    item.NodeAttributes = attributes

    result = (await parent.session.add_nodes([item]))[0]
    result.StatusCode.check()
    return Node(parent.session, result.AddedNodeId)
