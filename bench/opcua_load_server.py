#!/usr/bin/env python3
"""An asyncua OPC UA server of machine tools whose every state variable changes each second.

The address space follows what the opcua adapter reads from an OPC 40501 machine tool in the
OPC 40001 ``Machines`` folder (``adapters/opcua/models/discovery.py``), without loading the
NodeSet2 files. Each machine has up to ``--items-per-machine`` variables, filled in this order:

- ``MachineryItemState/CurrentState`` with its ``Id`` and ``Number`` (3 variables),
- ``MachineryOperationMode/CurrentState``, ``Id``, ``Number`` (3),
- ``Monitoring/MachineTool/OperationMode`` (1),
- ``Production/ActiveProgram/State/CurrentState``, ``Id``, ``Number`` (3),
- ``Production/ProductionPlan/JobN/State/CurrentState``, ``Id``, ``Number`` (3 per job),

and the last state machine keeps only as many of its variables as the count leaves.

Once every variable is monitored, each variable gets a new value with a new source timestamp
every ``--interval`` seconds. The item state and the operation mode alternate between
(Executing, Processing) and (NotExecuting, Setup), which OPC 40001-1 both read as Executing, and
they are written in the order that keeps every intermediate pair Executing too. So every value
changes while each machine's state holds, and the agent publishes its offers only at its
periodic republish. Programs and jobs cycle through the production states and the machine tool
mode through its enumeration.

The server prints ``ready PORT`` once it listens, and a line ``status monitored_items=N
writes=N notifications=N write_seconds=S`` every ``--report-seconds``. ``notifications`` counts
the data changes sent in publish responses, and ``write_seconds`` is the time the last round of
writes took.

Run: ``.venv/bin/python bench/opcua_load_server.py --port 4840 --machines 500``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncua import Server, ua
from asyncua.common.node import Node
from asyncua.server.internal_subscription import InternalSubscription

MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
LOAD_URI = "urn:kooperant:bench:load"
MACHINES_FOLDER_ID = 1001

ITEM_STATES = {"NotExecuting": 2, "Executing": 3}
OPERATION_MODES = {"Setup": 2, "Processing": 3}
PRODUCTION_STATES = {"Initializing": 0, "Running": 1, "Ended": 2, "Interrupted": 3, "Aborted": 4}
MACHINE_TOOL_MODES = (0, 1, 2, 3, 4, 5)

# Writes between two yields to the event loop, so publish requests are served meanwhile.
WRITES_PER_YIELD = 100

# Data change notifications put into publish responses by every subscription of the process.
sent_notifications = 0
_pop_datachanges = InternalSubscription._pop_triggered_datachanges


def _counting_pop(subscription: InternalSubscription, result: ua.PublishResult) -> None:
    """Count the notifications of a publish response; asyncua 2.1 keeps no such counter."""
    global sent_notifications
    _pop_datachanges(subscription, result)
    for data in result.NotificationMessage.NotificationData or []:
        if isinstance(data, ua.DataChangeNotification):
            sent_notifications += len(data.MonitoredItems)


InternalSubscription._pop_triggered_datachanges = _counting_pop  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class StateMachineNodes:
    """The variables of one state machine that the server created, None where left out."""

    current_state: ua.NodeId
    state_id: ua.NodeId | None
    number: ua.NodeId | None


@dataclass(slots=True)
class LoadMachine:
    """One machine's variables, in the order they are written within a round."""

    item_state: StateMachineNodes | None = None
    operation_mode: StateMachineNodes | None = None
    tool_mode: ua.NodeId | None = None
    production: list[StateMachineNodes] | None = None


def item_count(machine: LoadMachine) -> int:
    """Return how many variables ``machine`` has."""
    state_machines = [machine.item_state, machine.operation_mode, *(machine.production or [])]
    count = 0 if machine.tool_mode is None else 1
    for state_machine in state_machines:
        if state_machine is not None:
            count += 1 + (state_machine.state_id is not None) + (state_machine.number is not None)
    return count


class LoadServer:
    """The asyncua server with its machines and the task that changes their values."""

    def __init__(self, port: int, machines: int, items_per_machine: int) -> None:
        self.port = port
        self.machine_count = machines
        self.items_per_machine = items_per_machine
        self.server = Server()
        self.machines: list[LoadMachine] = []
        self.state_nodes: dict[str, ua.NodeId] = {}
        self.writes = 0
        self.last_round_seconds = 0.0
        self._namespace = 0
        self._objects: dict[str, Node] = {}

    async def build(self) -> None:
        """Create the namespaces, the state name nodes and every machine."""
        await self.server.init()
        self.server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}")
        self.server.set_server_name("kooperant load server")
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        machinery = await self.server.register_namespace(MACHINERY_URI)
        self._namespace = await self.server.register_namespace(LOAD_URI)

        objects = self.server.nodes.objects
        states = await objects.add_folder(self._id("States"), "States")
        names = [*ITEM_STATES, *OPERATION_MODES, *PRODUCTION_STATES]
        for name in dict.fromkeys(names):
            node = await states.add_object(self._id(f"State.{name}"), f"{self._namespace}:{name}")
            self.state_nodes[name] = node.nodeid

        folder = await objects.add_folder(
            ua.NodeId(MACHINES_FOLDER_ID, machinery), f"{machinery}:Machines"
        )
        for number in range(1, self.machine_count + 1):
            self.machines.append(await self._add_machine(folder, f"Machine-{number:04d}"))

    async def _add_machine(self, folder: Node, browse_name: str) -> LoadMachine:
        machine = LoadMachine()
        node = await folder.add_object(self._id(browse_name), f"{self._namespace}:{browse_name}")
        left = self.items_per_machine

        machine.item_state, left = await self._add_state_machine(
            node, browse_name, ("MachineryItemState",), left
        )
        machine.operation_mode, left = await self._add_state_machine(
            node, browse_name, ("MachineryOperationMode",), left
        )
        if left > 0:
            tool = await self._add_path(node, browse_name, ("Monitoring", "MachineTool"))
            variable = await tool.add_variable(
                self._id(f"{browse_name}.Monitoring.MachineTool.OperationMode"),
                f"{self._namespace}:OperationMode",
                ua.Variant(1, ua.VariantType.Int32),
            )
            machine.tool_mode = variable.nodeid
            left -= 1

        machine.production = []
        program, left = await self._add_state_machine(
            node, browse_name, ("Production", "ActiveProgram", "State"), left
        )
        if program is not None:
            machine.production.append(program)
        job = 1
        while left > 0:
            state, left = await self._add_state_machine(
                node, browse_name, ("Production", "ProductionPlan", f"Job{job}", "State"), left
            )
            assert state is not None
            machine.production.append(state)
            job += 1
        return machine

    async def _add_state_machine(
        self, machine: Node, prefix: str, path: tuple[str, ...], left: int
    ) -> tuple[StateMachineNodes | None, int]:
        if left <= 0:
            return None, left
        parent = await self._add_path(machine, prefix, path)
        base = f"{prefix}.{'.'.join(path)}.CurrentState"
        current_state = await parent.add_variable(
            self._id(base), f"{self._namespace}:CurrentState", ua.LocalizedText("")
        )
        created = [current_state.nodeid]
        for name, variant in (
            ("Id", ua.Variant(ua.NodeId(), ua.VariantType.NodeId)),
            ("Number", ua.Variant(0, ua.VariantType.UInt32)),
        ):
            if len(created) < left:
                child = await current_state.add_variable(
                    self._id(f"{base}.{name}"), f"{self._namespace}:{name}", variant
                )
                created.append(child.nodeid)
        nodes = StateMachineNodes(
            created[0],
            created[1] if len(created) > 1 else None,
            created[2] if len(created) > 2 else None,
        )
        return nodes, left - len(created)

    async def _add_path(self, machine: Node, prefix: str, path: tuple[str, ...]) -> Node:
        """Return the object at ``path`` below ``machine``, creating the missing objects."""
        current = machine
        for depth, name in enumerate(path, start=1):
            key = f"{prefix}.{'.'.join(path[:depth])}"
            if key not in self._objects:
                self._objects[key] = await current.add_object(
                    self._id(key), f"{self._namespace}:{name}"
                )
            current = self._objects[key]
        return current

    def _id(self, name: str) -> ua.NodeId:
        return ua.NodeId(name, self._namespace)

    def monitored_items(self) -> int:
        """Return the number of monitored items of every subscription on the server."""
        service = self.server.iserver.subscription_service
        return sum(
            len(subscription.monitored_item_srv._monitored_items)
            for subscription in service.subscriptions.values()
        )

    async def change_values(self, interval: float, total: int) -> None:
        """Write a new value to every variable each ``interval`` seconds.

        The writes begin once ``total`` monitored items exist, so that a client's browsing of
        the machines does not wait behind them.
        """
        # Polled, because asyncua offers no callback when a monitored item is created.
        while True:
            if self.monitored_items() >= total:
                break
            await asyncio.sleep(0.2)
        loop = asyncio.get_running_loop()
        round_number = 0
        next_round = loop.time()
        while True:
            started = time.perf_counter()
            await self._write_round(round_number)
            self.last_round_seconds = time.perf_counter() - started
            round_number += 1
            next_round += interval
            await asyncio.sleep(max(0.0, next_round - loop.time()))

    async def _write_round(self, round_number: int) -> None:
        now = datetime.now(UTC)
        aspace = self.server.iserver.aspace
        pending = 0
        for writes in self._round_writes(round_number):
            for node_id, variant in writes:
                value = ua.DataValue(variant, SourceTimestamp=now, ServerTimestamp=now)
                await aspace.write_attribute_value(node_id, ua.AttributeIds.Value, value)
                self.writes += 1
                pending += 1
            if pending >= WRITES_PER_YIELD:
                pending = 0
                await asyncio.sleep(0)

    def _round_writes(self, round_number: int) -> list[list[tuple[ua.NodeId, ua.Variant]]]:
        """Return the writes of one round, one list per machine."""
        # Moving to Setup writes the mode first and moving to Processing the item state first,
        # so the machine reads Executing after every single write.
        to_setup = round_number % 2 == 1
        item_name = "NotExecuting" if to_setup else "Executing"
        mode_name = "Setup" if to_setup else "Processing"
        production_names = list(PRODUCTION_STATES)
        rounds: list[list[tuple[ua.NodeId, ua.Variant]]] = []
        for index, machine in enumerate(self.machines):
            item = self._state_writes(machine.item_state, item_name, ITEM_STATES[item_name])
            mode = self._state_writes(machine.operation_mode, mode_name, OPERATION_MODES[mode_name])
            writes = mode + item if to_setup else item + mode
            if machine.tool_mode is not None:
                tool_mode = MACHINE_TOOL_MODES[1 + 2 * ((round_number + index) % 2)]
                writes.append((machine.tool_mode, ua.Variant(tool_mode, ua.VariantType.Int32)))
            for offset, state_machine in enumerate(machine.production or []):
                name = production_names[(round_number + index + offset) % len(production_names)]
                writes += self._state_writes(state_machine, name, PRODUCTION_STATES[name])
            rounds.append(writes)
        return rounds

    def _state_writes(
        self, nodes: StateMachineNodes | None, name: str, number: int
    ) -> list[tuple[ua.NodeId, ua.Variant]]:
        if nodes is None:
            return []
        writes = [(nodes.current_state, ua.Variant(ua.LocalizedText(name)))]
        if nodes.state_id is not None:
            writes.append((nodes.state_id, ua.Variant(self.state_nodes[name])))
        if nodes.number is not None:
            writes.append((nodes.number, ua.Variant(number, ua.VariantType.UInt32)))
        return writes


async def report(server: LoadServer, seconds: float, write: Callable[[str], None]) -> None:
    """Print the status line every ``seconds``."""
    while True:
        await asyncio.sleep(seconds)
        write(
            f"status monitored_items={server.monitored_items()} writes={server.writes} "
            f"notifications={sent_notifications} write_seconds={server.last_round_seconds:.3f}"
        )


def print_line(text: str) -> None:
    """Print ``text`` and flush, because the parent reads the lines as they come."""
    print(text, flush=True)


async def serve(arguments: argparse.Namespace) -> None:
    """Build the server, start it and change the values until cancelled."""
    server = LoadServer(arguments.port, arguments.machines, arguments.items_per_machine)
    await server.build()
    total = sum(item_count(machine) for machine in server.machines)
    async with server.server:
        print_line(f"ready {arguments.port} variables={total}")
        await asyncio.gather(
            server.change_values(arguments.interval, total),
            report(server, arguments.report_seconds, print_line),
        )


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; a bad value exits with 2 and names the option."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1.")
    parser.add_argument("--machines", type=int, default=500, help="Number of machines.")
    parser.add_argument(
        "--items-per-machine", type=int, default=20, help="Variables per machine (1 to 40)."
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="Seconds between value changes."
    )
    parser.add_argument(
        "--report-seconds", type=float, default=5.0, help="Seconds between status lines."
    )
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.machines <= 100_000:
        parser.error(f"invalid --machines {arguments.machines}: expected 1 to 100000")
    if not 1 <= arguments.items_per_machine <= 40:
        parser.error(f"invalid --items-per-machine {arguments.items_per_machine}: expected 1 to 40")
    if not arguments.interval > 0:
        parser.error(f"invalid --interval {arguments.interval}: expected a positive number")
    return arguments


def main() -> None:
    """Run the server until SIGTERM or Ctrl+C."""
    arguments = parse_arguments()
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(arguments))


if __name__ == "__main__":
    main()
