"""Tests of the OPC UA adapter against node-opcua, an OPC UA stack independent of asyncua.

The server runs in a Node.js child process (``tests/support/node_opcua``). Where Node.js or the
installed modules are missing, the tests skip, or fail under ``KOOPERANT_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from adapters.base import ConnectionState
from adapters.opcua import OpcUaAdapter, OpcUaSettings
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.machinery_server import MachineSpec
from tests.support.node_opcua_server import (
    NodeOpcuaServerError,
    node_opcua_server,
)
from tests.support.opcua_recording import (
    Recorder,
    has_state,
    in_state,
    server_health,
    statuses,
    wait_until,
)
from tests.support.recording_proxy import RecordingProxy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AdapterFactory = Callable[..., Awaitable[OpcUaAdapter]]

MACHINES = (
    MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing"),
    MachineSpec("Lathe B2", "Mazak", "QTU 250", "MZ-2502", "NotExecuting"),
    MachineSpec("Press-03", "Schuler", "MSD 400", "SCH-0403", "OutOfService"),
)


@pytest.fixture
async def running_adapters() -> AsyncIterator[AdapterFactory]:
    """A factory of started adapters that are all stopped after the test."""
    started: list[OpcUaAdapter] = []

    async def make(url: str, recorder: Recorder | None = None, **settings: Any) -> OpcUaAdapter:
        context = (recorder or Recorder()).context
        adapter = OpcUaAdapter("machines", OpcUaSettings(url=url, **settings), context)
        started.append(adapter)
        await adapter.start()
        return adapter

    yield make
    for adapter in started:
        await adapter.stop()


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_machines_found(running_adapters: AdapterFactory) -> None:
    async with node_opcua_server(MACHINES) as server:
        adapter = await running_adapters(server.endpoint, machines={"Mill-A1": "mill-1"})
        await wait_until(lambda: len(adapter.collect()) == 3, 10.0)

    found = statuses(adapter)
    assert sorted(found) == ["lathe-b2", "mill-1", "press-03"]
    assert found["mill-1"].state is MachineState.EXECUTING
    assert found["lathe-b2"].state is MachineState.NOT_EXECUTING
    assert found["press-03"].state is MachineState.OUT_OF_SERVICE
    assert found["lathe-b2"].name == "Lathe B2"
    assert found["mill-1"].identification == {
        "Manufacturer": "Hermle",
        "Model": "C 42 U",
        "SerialNumber": "H-4201",
    }
    assert found["press-03"].identification["SerialNumber"] == "SCH-0403"


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_state_change_followed(running_adapters: AdapterFactory) -> None:
    recorder = Recorder()
    async with node_opcua_server(MACHINES) as server:
        adapter = await running_adapters(
            server.endpoint, recorder, publishing_interval_ms=100, sampling_interval_ms=50
        )
        await wait_until(lambda: len(adapter.collect()) == 3, 10.0)
        before = statuses(adapter)["mill-a1"]
        notifications_before = recorder.notifications

        await server.set_state("Mill-A1", "NotAvailable")
        await wait_until(
            lambda: statuses(adapter)["mill-a1"].state is MachineState.NOT_AVAILABLE, 3.0
        )
        after = statuses(adapter)

    assert after["mill-a1"].since > before.since
    assert recorder.notifications > notifications_before
    assert after["lathe-b2"].state is MachineState.NOT_EXECUTING
    assert after["press-03"].state is MachineState.OUT_OF_SERVICE


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_every_state_mapped(running_adapters: AdapterFactory) -> None:
    async with node_opcua_server(MACHINES[:1]) as server:
        adapter = await running_adapters(
            server.endpoint, publishing_interval_ms=100, sampling_interval_ms=50
        )
        await wait_until(lambda: len(adapter.collect()) == 1, 10.0)

        for state in MachineState:
            if state is MachineState.UNKNOWN:
                continue
            await server.set_state("Mill-A1", state.value)
            await wait_until(has_state(adapter, "mill-a1", state), 3.0)


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_rejects_unknown_machine() -> None:
    async with node_opcua_server(MACHINES[:1]) as server:
        with pytest.raises(NodeOpcuaServerError) as raised:
            await server.set_state("Drill-9", "Executing")

        assert "Drill-9" in str(raised.value)
        assert "not found" in str(raised.value)
        await server.set_state("Mill-A1", "NotExecuting")


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_rejects_invalid_state() -> None:
    machine = MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Running")
    with pytest.raises(NodeOpcuaServerError) as raised:
        async with node_opcua_server([machine]):
            pass

    assert "exited with code 1" in str(raised.value)
    assert '"Running"' in str(raised.value)


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_server_stops_on_exit() -> None:
    async with node_opcua_server(MACHINES[:1]) as server:
        address = urlsplit(server.endpoint)
        assert address.hostname == "127.0.0.1"
        socket.create_connection((address.hostname, address.port or 0), timeout=1).close()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address.hostname, address.port or 0), timeout=1)


def adapter_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


async def timed_wait(condition: Callable[[], bool], within_seconds: float) -> float:
    """Wait until ``condition`` is true and return the seconds it took."""
    started = time.monotonic()
    await wait_until(condition, within_seconds)
    return time.monotonic() - started


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_server_restart(
    caplog: pytest.LogCaptureFixture, running_adapters: AdapterFactory
) -> None:
    port = free_tcp_port()
    async with node_opcua_server(MACHINES, port=port):
        adapter = await running_adapters(f"opc.tcp://127.0.0.1:{port}")
        await wait_until(lambda: len(adapter.collect()) == 3, 10.0)
        assert server_health(adapter).state is ConnectionState.CONNECTED
        caplog.clear()
        caplog.set_level(logging.WARNING)

    await wait_until(lambda: server_health(adapter).state is ConnectionState.DISCONNECTED)
    warnings = adapter_warnings(caplog)
    assert [record.name for record in warnings] == ["adapters.opcua.adapter"], [
        record.getMessage() for record in warnings
    ]
    assert "lost connection" in warnings[0].getMessage()

    async with node_opcua_server(MACHINES, port=port) as server:
        await server.set_state("Mill-A1", "NotAvailable")
        seconds = await timed_wait(has_state(adapter, "mill-a1", MachineState.NOT_AVAILABLE), 10.0)
        print(f"node-opcua restart: states flow {seconds:.1f} s after the new server is ready")

        await server.set_state("Lathe B2", "Executing")
        await wait_until(has_state(adapter, "lathe-b2", MachineState.EXECUTING), 10.0)
        health = server_health(adapter)

    assert health.reconnects == 1
    assert health.errors["connections_lost"] == 1
    assert health.errors["keepalive_timeouts"] == 0


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_server_down_at_start(running_adapters: AdapterFactory) -> None:
    port = free_tcp_port()
    adapter = await running_adapters(f"opc.tcp://127.0.0.1:{port}")
    await wait_until(lambda: server_health(adapter).errors["connect_failures"] >= 1)
    assert adapter.collect() == []
    assert server_health(adapter).state is ConnectionState.DISCONNECTED

    async with node_opcua_server(MACHINES, port=port):
        seconds = await timed_wait(lambda: len(adapter.collect()) == 3, 10.0)
        print(f"node-opcua down at start: states flow {seconds:.1f} s after the server is ready")
        health = server_health(adapter)

    assert health.state is ConnectionState.CONNECTED
    assert health.reconnects == 0
    assert statuses(adapter)["press-03"].state is MachineState.OUT_OF_SERVICE


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_stack_half_open_link(
    caplog: pytest.LogCaptureFixture, running_adapters: AdapterFactory
) -> None:
    caplog.set_level(logging.WARNING)
    async with node_opcua_server(MACHINES) as server:
        server_port = urlsplit(server.endpoint).port
        assert server_port is not None
        async with RecordingProxy("127.0.0.1", server_port).running() as proxy:
            adapter = await running_adapters(f"opc.tcp://127.0.0.1:{proxy.port}")
            await wait_until(lambda: len(adapter.collect()) == 3, 10.0)
            # Explicit subscription counts within node-opcua's limits are not revised.
            assert adapter_warnings(caplog) == []

            proxy.stop_forwarding()
            seconds = await timed_wait(
                lambda: server_health(adapter).state is ConnectionState.DISCONNECTED, 30.0
            )
            print(f"node-opcua half-open link detected after {seconds:.1f} s")
            assert server_health(adapter).errors["keepalive_timeouts"] == 1

            proxy.resume_forwarding()
            await server.set_state("Mill-A1", "OutOfService")
            await wait_until(has_state(adapter, "mill-a1", MachineState.OUT_OF_SERVICE), 30.0)
            # The states of a new connection are read before its health turns connected.
            await wait_until(in_state(adapter, ConnectionState.CONNECTED), 10.0)
            assert server_health(adapter).reconnects == 1
            warnings = adapter_warnings(caplog)

    assert [record.name for record in warnings] == ["adapters.opcua.adapter"], [
        record.getMessage() for record in warnings
    ]
    assert "stopped responding" in warnings[0].getMessage()
