"""Values that arrive in one publish response: each machine's state is resolved once after them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from asyncua import ua

from adapters.opcua import OpcUaAdapter
from adapters.opcua.machinery import MachineNodes
from adapters.opcua.tracking import PendingMachines, TrackedMachine
from bench.opcua_load_server import LoadServer, StateMachineNodes
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.opcua_recording import Recorder, statuses, wait_until


async def write_state(
    server: LoadServer, nodes: StateMachineNodes | None, name: str, number: int
) -> None:
    assert nodes is not None
    aspace = server.server.iserver.aspace
    writes = [
        (nodes.current_state, ua.Variant(ua.LocalizedText(name))),
        (nodes.state_id, ua.Variant(server.state_nodes[name])),
        (nodes.number, ua.Variant(number, ua.VariantType.UInt32)),
    ]
    for node_id, variant in writes:
        assert node_id is not None
        await aspace.write_attribute_value(node_id, ua.AttributeIds.Value, ua.DataValue(variant))


async def test_batch_without_intermediate_state(
    running_adapters: Callable[..., OpcUaAdapter],
) -> None:
    # One machine with MachineryItemState and MachineryOperationMode, as OPC 40001 defines them.
    server = LoadServer(free_tcp_port(), machines=1, items_per_machine=6)
    await server.build()
    machine = server.machines[0]
    async with server.server:
        await write_state(server, machine.item_state, "Executing", 3)
        await write_state(server, machine.operation_mode, "Processing", 3)
        recorder = Recorder()
        adapter = running_adapters(
            f"opc.tcp://127.0.0.1:{server.port}",
            recorder,
            publishing_interval_ms=500,
            sampling_interval_ms=0,
        )
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 1, 10.0)
        await wait_until(lambda: statuses(adapter)["machine-0001"].state is MachineState.EXECUTING)
        await asyncio.sleep(1.0)
        before = statuses(adapter)["machine-0001"]
        notifications = recorder.notifications

        # Between the two writes the machine reads NotExecuting (item state NotExecuting in the
        # Processing mode); after both it reads Executing again (the Setup mode).
        await write_state(server, machine.item_state, "NotExecuting", 2)
        await write_state(server, machine.operation_mode, "Setup", 2)
        await asyncio.sleep(1.5)

    after = statuses(adapter)["machine-0001"]
    assert after.state is MachineState.EXECUTING
    assert after.since == before.since
    assert recorder.notifications == notifications


def test_pending_machines_take_in_order() -> None:
    pending = PendingMachines()
    first = TrackedMachine("a", MachineNodes("A", "A", {}))
    second = TrackedMachine("b", MachineNodes("B", "B", {}))

    pending.add(first)
    pending.add(second)
    pending.add(first)

    assert pending.waiting.is_set()
    assert pending.take() == [first, second]
    assert not pending.waiting.is_set()
    assert pending.take() == []
