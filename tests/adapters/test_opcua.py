"""Tests of the OPC UA adapter against in-process asyncua servers.

The nodeset server imports the official DI and Machinery NodeSet2 files, and its tests skip where
those files are absent. The demo machine park is built in code, so its tests always run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Server
from pydantic import ValidationError

from adapters.opcua import OpcUaAdapter, OpcUaSettings, default_resource_id
from adapters.opcua.connection import disconnect
from adapters.registry import load_adapter_class
from kooperant.demo.machine_park import MachinePark
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.machinery_server import MachineSpec, machinery_server
from tests.support.opcua_recording import FAST_RECONNECT, Recorder, statuses, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.nodesets
async def test_nodeset_server_machines_found(
    nodesets_dir: Path, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    async with machinery_server(nodesets_dir) as server:
        adapter = running_adapters(server.endpoint, machines={"Mill-A1": "mill-1"})
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 2)

    found = statuses(adapter)
    assert sorted(found) == ["lathe-b2", "mill-1"]
    assert found["mill-1"].state is MachineState.EXECUTING
    assert found["lathe-b2"].state is MachineState.NOT_EXECUTING
    assert found["lathe-b2"].name == "Lathe B2"
    assert found["mill-1"].identification == {
        "Manufacturer": "Hermle",
        "Model": "C 42 U",
        "SerialNumber": "H-4201",
    }


@pytest.mark.nodesets
async def test_nodeset_server_state_change_followed(
    nodesets_dir: Path, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    recorder = Recorder()
    async with machinery_server(nodesets_dir) as server:
        adapter = running_adapters(
            server.endpoint, recorder, publishing_interval_ms=100, sampling_interval_ms=50
        )
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 2)
        before = statuses(adapter)["mill-a1"]
        notifications_before = recorder.notifications

        await server.set_state("Mill-A1", "OutOfService")
        await wait_until(
            lambda: statuses(adapter)["mill-a1"].state is MachineState.OUT_OF_SERVICE, 3.0
        )

    after = statuses(adapter)["mill-a1"]
    assert after.since > before.since
    assert recorder.notifications > notifications_before
    assert statuses(adapter)["lathe-b2"].state is MachineState.NOT_EXECUTING


@pytest.mark.nodesets
async def test_nodeset_servers_namespace_order(
    nodesets_dir: Path, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    machine = MachineSpec("Grinder-7", "Studer", "S33", "ST-33-7", "Executing")
    async with (
        machinery_server(nodesets_dir, [machine]) as plain,
        machinery_server(
            nodesets_dir, [machine], extra_namespaces=["urn:a", "urn:b", "urn:c"]
        ) as shifted,
    ):
        assert plain.machinery_index != shifted.machinery_index
        adapters = [running_adapters(plain.endpoint), running_adapters(shifted.endpoint)]
        for adapter in adapters:
            await adapter.start()
        await wait_until(lambda: all(adapter.collect() for adapter in adapters))

        for server in (plain, shifted):
            await server.set_state("Grinder-7", "NotAvailable")
        for adapter in adapters:
            await wait_until(
                lambda adapter=adapter: (
                    statuses(adapter)["grinder-7"].state  # type: ignore[misc]
                    is MachineState.NOT_AVAILABLE
                )
            )

    for adapter in adapters:
        status = statuses(adapter)["grinder-7"]
        assert status.identification["Manufacturer"] == "Studer"


async def test_demo_park_three_machines(running_adapters: Callable[..., OpcUaAdapter]) -> None:
    async with MachinePark(change_interval_seconds=60, seed=1) as park:
        adapter = running_adapters(park.endpoint)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)
        await park.set_state("LASER-02", MachineState.OUT_OF_SERVICE)
        await wait_until(lambda: statuses(adapter)["laser-02"].state is MachineState.OUT_OF_SERVICE)

    found = statuses(adapter)
    assert sorted(found) == ["cnc-5ax-01", "laser-02", "press-03"]
    assert found["cnc-5ax-01"].state is MachineState.EXECUTING
    assert found["cnc-5ax-01"].identification == {
        "Manufacturer": "DMG MORI",
        "Model": "DMU 50",
        "SerialNumber": "DMU50-2019-0412",
    }
    assert found["press-03"].name == "PRESS-03"


async def test_demo_park_simulation_changes_states() -> None:
    async with MachinePark(change_interval_seconds=0.05, seed=3) as park:
        adapter = OpcUaAdapter("park", OpcUaSettings(url=park.endpoint), Recorder().context)
        await adapter.start()
        try:
            await wait_until(lambda: len(adapter.collect()) == 3)
            first = {status.resource: status.since for status in statuses(adapter).values()}
            await wait_until(
                lambda: any(status.since != first[key] for key, status in statuses(adapter).items())
            )
        finally:
            await adapter.stop()


async def test_unreachable_server_connects_later(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.opcua")
    port = free_tcp_port()
    adapter = running_adapters(f"opc.tcp://127.0.0.1:{port}", **FAST_RECONNECT)

    started = time.monotonic()
    await adapter.start()
    assert time.monotonic() - started < 0.5
    assert adapter.collect() == []

    await wait_until(lambda: adapter.failed_attempts >= 3)
    async with MachinePark(port=port, change_interval_seconds=60):
        await wait_until(lambda: len(adapter.collect()) == 3)

    messages = [record.getMessage() for record in caplog.records]
    assert len([text for text in messages if "cannot reach" in text]) == 1
    assert len([text for text in messages if text.startswith("connected to")]) == 1


async def test_server_restart_states_flow_again(
    running_adapters: Callable[..., OpcUaAdapter],
) -> None:
    port = free_tcp_port()
    adapter = running_adapters(f"opc.tcp://127.0.0.1:{port}", **FAST_RECONNECT)
    async with MachinePark(port=port, change_interval_seconds=60):
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)
        assert adapter.connected

    await wait_until(
        lambda: all(status.state is MachineState.UNKNOWN for status in statuses(adapter).values())
    )
    assert not adapter.connected

    async with MachinePark(port=port, change_interval_seconds=60) as park:
        await wait_until(lambda: statuses(adapter)["cnc-5ax-01"].state is MachineState.EXECUTING)
        await park.set_state("PRESS-03", MachineState.NOT_EXECUTING)
        await wait_until(lambda: statuses(adapter)["press-03"].state is MachineState.NOT_EXECUTING)
    assert len(statuses(adapter)) == 3


async def test_server_without_machinery_logs_error(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    async with server:
        adapter = running_adapters(endpoint, **FAST_RECONNECT)
        await adapter.start()
        await wait_until(lambda: adapter.failed_attempts >= 3)

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert endpoint in errors[0].getMessage()
    assert "no Machinery namespace" in errors[0].getMessage()
    assert adapter.collect() == []


async def test_server_without_machines_folder_logs_error(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    await server.register_namespace("http://opcfoundation.org/UA/Machinery/")
    async with server:
        adapter = running_adapters(endpoint, **FAST_RECONNECT)
        await adapter.start()
        await wait_until(lambda: adapter.failed_attempts >= 2)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert endpoint in errors[0]
    assert "no Machines folder" in errors[0]


async def test_adapter_stop_is_prompt(running_adapters: Callable[..., OpcUaAdapter]) -> None:
    async with MachinePark(change_interval_seconds=60) as park:
        adapter = running_adapters(park.endpoint)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)

        started = time.monotonic()
        await adapter.stop()
        assert time.monotonic() - started < 2.0


async def test_disconnect_keeps_cancel_at_same_step() -> None:
    # A cancellation that arrives in the loop step in which the disconnect ends must still end
    # the caller. Python 3.11's asyncio.wait_for dropped it, and stop() then waited forever.
    disconnected = asyncio.Event()

    class SlowClient:
        async def disconnect(self) -> None:
            await disconnected.wait()

    settings = OpcUaSettings(url="opc.tcp://127.0.0.1:4840")
    task = asyncio.create_task(disconnect(SlowClient(), settings))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)

    disconnected.set()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"url": "tcp://127.0.0.1:4840"}, "url"),
        ({"url": "opc.tcp://user:secret@127.0.0.1:4840"}, "url"),
        ({"url": "opc.tcp://127.0.0.1:4840", "poll_interval_seconds": -1}, "poll_interval_seconds"),
        ({"url": "opc.tcp://127.0.0.1:4840", "timeout_seconds": 0}, "timeout_seconds"),
        ({"url": "opc.tcp://127.0.0.1:4840", "timeout_seconds": 1e9}, "timeout_seconds"),
        ({"url": "opc.tcp://127.0.0.1:4840", "timeout_seconds": "nan"}, "timeout_seconds"),
        (
            {"url": "opc.tcp://127.0.0.1:4840", "max_clock_skew_seconds": float("inf")},
            "max_clock_skew_seconds",
        ),
        (
            {"url": "opc.tcp://127.0.0.1:4840", "max_clock_skew_seconds": 1e15},
            "max_clock_skew_seconds",
        ),
        (
            {"url": "opc.tcp://127.0.0.1:4840", "publishing_interval_ms": float("inf")},
            "publishing_interval_ms",
        ),
        ({"url": "opc.tcp://127.0.0.1:4840", "keepalive_seconds": "nan"}, "keepalive_seconds"),
        ({"url": "opc.tcp://127.0.0.1:4840", "pki_dir": ""}, "pki_dir"),
        (
            {"url": "opc.tcp://127.0.0.1:4840", "username": "", "password": "x"},
            "username",
        ),
        (
            {"url": "opc.tcp://127.0.0.1:4840", "reconnect_max_seconds": float("inf")},
            "reconnect_max_seconds",
        ),
        ({"url": "opc.tcp://127.0.0.1:4840", "sampling_interval": 100}, "sampling_interval"),
        ({"url": "opc.tcp://127.0.0.1:4840", "machines": {"Mill": "a/b"}}, "machines"),
        ({"url": "opc.tcp://127.0.0.1:4840", "username": "operator"}, "password"),
        (
            {
                "url": "opc.tcp://127.0.0.1:4840",
                "reconnect_min_seconds": 5,
                "reconnect_max_seconds": 1,
            },
            "reconnect_max_seconds",
        ),
    ],
)
def test_settings_invalid_names_key(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError) as raised:
        OpcUaSettings(**settings)
    assert key in str(raised.value)
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secretpw@127.0.0.1:4840",
        "opc.tcp://user:secretpw@127.0.0.1:4840",
        "opc.tcp://user:secretpw@[::1",
    ],
)
def test_settings_invalid_url_masks_password(url: str) -> None:
    with pytest.raises(ValidationError) as raised:
        OpcUaSettings(url=url)

    assert "url" in str(raised.value)
    assert "secretpw" not in str(raised.value)


def test_settings_password_hidden_in_repr() -> None:
    settings = OpcUaSettings(url="opc.tcp://127.0.0.1:4840", username="op", password="s3cret")
    assert "s3cret" not in repr(settings)
    assert settings.timeout_seconds == 5.0


@pytest.mark.parametrize(
    ("browse_name", "resource"),
    [
        ("CNC-5AX-01", "cnc-5ax-01"),
        ("Lathe B2", "lathe-b2"),
        ("_Spawarka #3", "spawarka--3"),
        ("x" * 80, "x" * 64),
        ("###", None),
    ],
)
def test_default_resource_id_cases(browse_name: str, resource: str | None) -> None:
    assert default_resource_id(browse_name) == resource


def test_registry_loads_opcua_adapter() -> None:
    assert load_adapter_class("opcua") is OpcUaAdapter


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "adapters" / "opcua.example.yaml"
    entry = yaml.safe_load(example.read_text(encoding="utf-8"))["adapters"][0]

    assert entry.pop("type") == "opcua"
    entry.pop("name")
    settings = OpcUaSettings(**entry)
    assert settings.machines["Lathe B2"] == "tokarka-b2"
