"""Finding the machines of a server in every companion model that the adapter reads.

Machines of OPC 40001 are the objects of the ``Machines`` folder. The PackML, MachineTool and
EUROMAP 83 models do not require that folder. So objects of the OPC 30050 PackML base type, of
the OPC 40501 machine tool type, and objects with a EUROMAP 83 ``MachineStatus`` are also
searched for by type below ``Objects``, to a bounded depth. The entries of ``nodes`` in the settings
come last.

Each machine gets the state variables of every model it shows, and the most specific model
decides how its state is read (``adapters.opcua.models.rules``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds

from adapters.opcua.limits import NO_LIMITS, OperationLimits
from adapters.opcua.machinery import (
    MACHINERY_URI,
    CompanionModel,
    MachineNodes,
    NoMachineryError,
    ServerConfigurationError,
    add_machinery_states,
    child_objects,
    machines_folder,
    node_id,
    object_at,
    optional_child,
    read_identification,
)
from adapters.opcua.models.mapping import NodeMapping, mapped_machines

_LOGGER = logging.getLogger(__name__)

MACHINE_TOOL_URI = "http://opcfoundation.org/UA/MachineTool/"
PACKML_URI = "http://opcfoundation.org/UA/PackML/"
EUROMAP83_URI = "http://opcfoundation.org/UA/PlasticsRubber/GeneralTypes/"

# Type NodeIds fixed by each model's NodeSet2 file.
MACHINE_TOOL_TYPE_ID = 13
PACKML_BASE_OBJECT_TYPE_ID = 6
EUROMAP83_MACHINE_STATUS_TYPE_ID = 1019

# Bounds of the search by type below Objects: levels below Objects, and objects browsed.
SEARCH_DEPTH = 4
SEARCH_MAX_OBJECTS = 1000

# Machines of the Machines folder read at the same time. Reading one machine takes about 35
# sequential browse requests on an OPC 40501 machine tool, so on a server with hundreds of
# machines the round trips, not the server's work, set the time to start.
# NOTE: 8 is a guess that stays far below the request queues of common servers. It was not
# tried on embedded servers that serve one request at a time.
MACHINES_READ_TOGETHER = 8

_SERVER_OBJECT = node_id(ObjectIds.Server)


@dataclass(slots=True)
class _ServerTypes:
    """Namespace indexes and model types (with their subtypes) present on one server."""

    machinery: int | None = None
    machine_tools: set[ua.NodeId] = field(default_factory=set)
    packml: set[ua.NodeId] = field(default_factory=set)
    machine_statuses: set[ua.NodeId] = field(default_factory=set)

    @property
    def searchable(self) -> bool:
        return bool(self.machine_tools or self.packml or self.machine_statuses)


async def discover_machines(
    client: Client,
    url: str,
    nodes: tuple[NodeMapping, ...] = (),
    limits: OperationLimits = NO_LIMITS,
    on_machine: Callable[[MachineNodes], None] | None = None,
) -> list[MachineNodes]:
    """Return every machine found on the server and every machine of ``nodes``.

    Reads of several nodes stay within ``limits``; the default assumes the server has none.
    ``on_machine`` is called with each machine of the folder and of the search by type once it
    is read, so a caller can show progress on a large server.

    Raises ``ServerConfigurationError`` for an entry of ``nodes`` that the server lacks, and
    when the server has neither a Machinery ``Machines`` folder, nor a machine of another
    model, nor ``nodes`` in the settings.
    """
    namespaces = await client.get_namespace_array()
    types = await _server_types(client, namespaces)

    machines: list[MachineNodes] = []
    seen: set[ua.NodeId] = set()
    missing_machinery: ServerConfigurationError | None = None
    if types.machinery is None:
        missing_machinery = NoMachineryError(
            f"OPC UA server {url} has no Machinery namespace ({MACHINERY_URI}) and no machine "
            "of another supported model; load the OPC 40001 Machinery model on the server, "
            "or map the state variables under nodes in the adapter settings"
        )
    else:
        try:
            folder = await machines_folder(client, types.machinery, url)
        except ServerConfigurationError as error:
            missing_machinery = error
        else:
            seen.add(folder.nodeid)
            descriptions = await child_objects(folder)
            seen.update(description.NodeId for description in descriptions)
            for start in range(0, len(descriptions), MACHINES_READ_TOGETHER):
                batch = descriptions[start : start + MACHINES_READ_TOGETHER]
                for machine in await _gather(
                    [read_machine(client, description, types, limits) for description in batch]
                ):
                    machines.append(machine)
                    if on_machine is not None:
                        on_machine(machine)

    if types.searchable:
        machines += await _search_by_type(client, types, seen, on_machine)
    machines += await mapped_machines(client, nodes, url)

    if not machines and missing_machinery is not None and not nodes:
        raise missing_machinery
    return machines


async def _gather(reads: Sequence[Awaitable[MachineNodes]]) -> list[MachineNodes]:
    """Run ``reads`` together and return their results in order.

    When one fails, the others are cancelled and its error is raised as it is, so the caller
    sees the same exceptions as from a single read.
    """
    tasks = [asyncio.ensure_future(read) for read in reads]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def read_machine(
    client: Client,
    description: ua.ReferenceDescription,
    types: _ServerTypes,
    limits: OperationLimits = NO_LIMITS,
) -> MachineNodes:
    """Read one machine's identification and the state variables of every model it shows."""
    node = client.get_node(description.NodeId)
    components = {item.BrowseName.Name: item for item in await child_objects(node)}
    machine = MachineNodes(
        browse_name=description.BrowseName.Name,
        display_name=description.DisplayName.Text or description.BrowseName.Name,
        identification={},
    )
    for name in ("Identification", "MachineInformation"):
        if name in components:
            machine.identification = await read_identification(
                client, client.get_node(components[name].NodeId), limits
            )
            break

    await add_machinery_states(client, machine, components, types.machinery)
    if await _add_packml(machine, node, description, components, types):
        machine.model = CompanionModel.PACKML
    elif await _add_euromap83(machine, node, components):
        machine.model = CompanionModel.EUROMAP83
    elif await _add_machine_tool(machine, node):
        machine.model = CompanionModel.MACHINE_TOOL
    return machine


async def _add_packml(
    machine: MachineNodes,
    node: Node,
    description: ua.ReferenceDescription,
    components: dict[str, ua.ReferenceDescription],
    types: _ServerTypes,
) -> bool:
    is_packml = description.TypeDefinition in types.packml or (
        "BaseStateMachine" in components and "Status" in components
    )
    if not is_packml:
        return False
    levels = (
        ("base_state", ("BaseStateMachine",)),
        ("machine_state", ("BaseStateMachine", "MachineState")),
        ("execute_state", ("BaseStateMachine", "MachineState", "ExecuteState")),
    )
    for role, path in levels:
        state_machine = await object_at(node, *path)
        if state_machine is not None:
            await machine.add_state_machine(role, state_machine)
    await _add_variable(machine, "unit_mode", node, ("Status",), "UnitModeCurrent")
    return True


async def _add_euromap83(
    machine: MachineNodes, node: Node, components: dict[str, ua.ReferenceDescription]
) -> bool:
    if "MachineStatus" not in components:
        return False
    await _add_variable(machine, "is_present", node, ("MachineStatus",), "IsPresent")
    await _add_variable(machine, "machine_mode", node, ("MachineStatus",), "MachineMode")
    await _add_variable(
        machine,
        "production_status",
        node,
        ("MachineMESStatus", "ProductionControl"),
        "ProductionStatus",
    )
    await _add_variable(machine, "job_status", node, ("Jobs", "ActiveJobValues"), "JobStatus")
    return "machine_mode" in machine.variables or "is_present" in machine.variables


async def _add_machine_tool(machine: MachineNodes, node: Node) -> bool:
    added = await _add_variable(
        machine, "machine_tool_mode", node, ("Monitoring", "MachineTool"), "OperationMode"
    )
    program = await object_at(node, "Production", "ActiveProgram", "State")
    if program is not None:
        added = await machine.add_state_machine("program", program) or added
    plan = await object_at(node, "Production", "ProductionPlan")
    if plan is not None:
        jobs = [job for job in await child_objects(plan) if not _is_placeholder(job)]
        for number, job in enumerate(jobs, start=1):
            state = await object_at(Node(node.session, job.NodeId), "State")
            if state is not None:
                added = await machine.add_state_machine(f"job.{number}", state) or added
    return added


def _is_placeholder(description: ua.ReferenceDescription) -> bool:
    # asyncua 2.1 servers instantiate the <OrderedObject> placeholder of the job list type.
    name: str = description.BrowseName.Name
    return name.startswith("<") and name.endswith(">")


async def _add_variable(
    machine: MachineNodes, role: str, node: Node, path: tuple[str, ...], name: str
) -> bool:
    parent = await object_at(node, *path)
    variable = None if parent is None else await optional_child(parent, name)
    if variable is None:
        return False
    machine.variables[role] = variable
    return True


async def _server_types(client: Client, namespaces: list[str]) -> _ServerTypes:
    types = _ServerTypes()
    if MACHINERY_URI in namespaces:
        types.machinery = namespaces.index(MACHINERY_URI)
    searches = (
        (MACHINE_TOOL_URI, MACHINE_TOOL_TYPE_ID, types.machine_tools),
        (PACKML_URI, PACKML_BASE_OBJECT_TYPE_ID, types.packml),
        (EUROMAP83_URI, EUROMAP83_MACHINE_STATUS_TYPE_ID, types.machine_statuses),
    )
    for uri, type_id, found in searches:
        if uri in namespaces:
            found |= await _with_subtypes(client, node_id(type_id, namespaces.index(uri)))
    return types


async def _with_subtypes(client: Client, type_id: ua.NodeId) -> set[ua.NodeId]:
    found = {type_id}
    pending = [type_id]
    while pending:
        node = client.get_node(pending.pop())
        for subtype in await node.get_children(
            refs=ObjectIds.HasSubtype, nodeclassmask=ua.NodeClass.ObjectType
        ):
            if subtype.nodeid not in found:
                found.add(subtype.nodeid)
                pending.append(subtype.nodeid)
    return found


async def _search_by_type(
    client: Client,
    types: _ServerTypes,
    seen: set[ua.NodeId],
    on_machine: Callable[[MachineNodes], None] | None,
) -> list[MachineNodes]:
    """Search below Objects, breadth first, for objects of the PackML, tool or EUROMAP types."""
    machines: list[MachineNodes] = []
    found = len(machines)
    euromap_machines: set[ua.NodeId] = set()
    objects = client.nodes.objects
    pending: deque[tuple[ua.ReferenceDescription | None, Node, int]] = deque([(None, objects, 0)])
    browsed = 0
    while pending and browsed < SEARCH_MAX_OBJECTS:
        parent_description, parent, depth = pending.popleft()
        browsed += 1
        for child in await child_objects(parent):
            if child.NodeId in seen or child.NodeId == _SERVER_OBJECT:
                continue
            seen.add(child.NodeId)
            if child.TypeDefinition in types.packml or child.TypeDefinition in types.machine_tools:
                machines.append(await read_machine(client, child, types))
            elif child.TypeDefinition in types.machine_statuses:
                # The object that contains MachineStatus is the machine.
                if (
                    parent_description is not None
                    and parent_description.NodeId not in euromap_machines
                ):
                    euromap_machines.add(parent_description.NodeId)
                    machines.append(await read_machine(client, parent_description, types))
            elif depth + 1 < SEARCH_DEPTH:
                pending.append((child, client.get_node(child.NodeId), depth + 1))
            if on_machine is not None and len(machines) > found:
                found = len(machines)
                on_machine(machines[-1])
    if pending:
        # NOTE: a server with more objects than this bound may hide machines from the search.
        _LOGGER.warning(
            "stopped the search for machines after %d objects; map the missing ones under "
            "nodes in the adapter settings",
            SEARCH_MAX_OBJECTS,
        )
    return machines
