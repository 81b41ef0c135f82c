"""Tests of the explicit mapping (``nodes`` in the opcua adapter settings).

A plain asyncua server without any companion model contains one integer, one text and one boolean
state variable. The adapter must follow them by node id and by browse path, and reject bad
settings with an error that names the key and the value.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Node, Server, ua
from pydantic import ValidationError

from adapters.opcua import OpcUaAdapter, OpcUaSettings
from adapters.opcua.models.mapping import parse_browse_path, parse_node_reference
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.machinery_server import DI_URI, MACHINERY_URI, TEST_URI, machinery_server
from tests.support.opcua_recording import Recorder, expect_state, statuses, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PLC_URI = "urn:kooperant:test:plc"
FAST = {
    "publishing_interval_ms": 100,
    "sampling_interval_ms": 50,
    "reconnect_min_seconds": 0.1,
    "reconnect_max_seconds": 0.3,
}
INT_STATES = {0: "not_available", 1: "executing", 2: "not_executing", 3: "out_of_service"}
BOOL_STATES = {True: "executing", False: "not_executing"}


@dataclass
class PlcServer:
    """A plain server with the variables Press1/Status (int), Laser/Mode (text), Saw/Running."""

    endpoint: str
    namespace: int
    status: Node
    mode: Node
    running: Node


@pytest.fixture
async def plc_server() -> AsyncIterator[PlcServer]:
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    # An extra namespace first, so the PLC namespace does not have the index the test expects.
    await server.register_namespace("urn:kooperant:test:other")
    index = await server.register_namespace(PLC_URI)
    objects = server.nodes.objects

    press = await objects.add_object(ua.NodeId("Press1", index), ua.QualifiedName("Press1", index))
    status = await press.add_variable(
        ua.NodeId("Press1.Status", index), ua.QualifiedName("Status", index), ua.Int32(1)
    )
    laser = await objects.add_object(ua.NodeId("Laser", index), ua.QualifiedName("Laser", index))
    mode = await laser.add_variable(
        ua.NodeId("Laser.Mode", index), ua.QualifiedName("Mode", index), "RUN"
    )
    saw = await objects.add_object(ua.NodeId("Saw", index), ua.QualifiedName("Saw", index))
    running = await saw.add_variable(
        ua.NodeId("Saw.Running", index), ua.QualifiedName("Running", index), True
    )
    async with server:
        yield PlcServer(endpoint, index, status, mode, running)


@pytest.fixture
async def start_adapter() -> AsyncIterator[Callable[..., Any]]:
    started: list[OpcUaAdapter] = []

    async def start(url: str, nodes: list[dict[str, Any]], **settings: Any) -> OpcUaAdapter:
        adapter_settings = OpcUaSettings(url=url, nodes=nodes, **FAST, **settings)
        adapter = OpcUaAdapter("plc", adapter_settings, Recorder().context)
        started.append(adapter)
        await adapter.start()
        return adapter

    yield start
    for adapter in started:
        await adapter.stop()


def mapped(**entry: Any) -> dict[str, Any]:
    return {"resource": "press-1", "states": INT_STATES} | entry


async def test_mapping_by_node_id_follows_values(
    plc_server: PlcServer, start_adapter: Callable[..., Any]
) -> None:
    nodes = [
        mapped(name="Press 1", node=f"nsu={PLC_URI};s=Press1.Status"),
        {
            "resource": "Laser-2",
            "node": f"ns={plc_server.namespace};s=Laser.Mode",
            "states": {"run": "executing", "STOP": "not_executing"},
            "default": "out_of_service",
        },
        {
            "resource": "saw-3",
            "node": f"nsu={PLC_URI};s=Saw.Running",
            "states": {True: "executing", False: "not_executing"},
        },
    ]
    adapter = await start_adapter(plc_server.endpoint, nodes)
    await expect_state(adapter, "press-1", MachineState.EXECUTING)
    await expect_state(adapter, "Laser-2", MachineState.EXECUTING)
    await expect_state(adapter, "saw-3", MachineState.EXECUTING)
    assert statuses(adapter)["press-1"].name == "Press 1"
    assert statuses(adapter)["Laser-2"].name == "Laser-2"

    await plc_server.status.write_value(ua.Int32(3))
    await expect_state(adapter, "press-1", MachineState.OUT_OF_SERVICE)
    await plc_server.status.write_value(ua.Int32(7))
    await expect_state(adapter, "press-1", MachineState.UNKNOWN)

    await plc_server.mode.write_value("stop")
    await expect_state(adapter, "Laser-2", MachineState.NOT_EXECUTING)
    await plc_server.mode.write_value("ALARM")
    await expect_state(adapter, "Laser-2", MachineState.OUT_OF_SERVICE)

    await plc_server.running.write_value(False)
    await expect_state(adapter, "saw-3", MachineState.NOT_EXECUTING)


async def test_mapping_by_browse_path(
    plc_server: PlcServer, start_adapter: Callable[..., Any]
) -> None:
    index = plc_server.namespace
    nodes = [
        mapped(browse_path=f"0:Objects/nsu={PLC_URI};Press1/nsu={PLC_URI};Status"),
        {
            "resource": "saw-3",
            "browse_path": f"/0:Objects/{index}:Saw/{index}:Running",
            "states": {"true": "executing", "false": "not_executing"},
        },
    ]
    adapter = await start_adapter(plc_server.endpoint, nodes)
    await expect_state(adapter, "press-1", MachineState.EXECUTING)
    await expect_state(adapter, "saw-3", MachineState.EXECUTING)

    await plc_server.status.write_value(ua.Int32(0))
    await expect_state(adapter, "press-1", MachineState.NOT_AVAILABLE)
    await plc_server.running.write_value(False)
    await expect_state(adapter, "saw-3", MachineState.NOT_EXECUTING)


@pytest.mark.nodesets
async def test_mapping_beside_machinery_machines(
    nodesets_dir: Path, start_adapter: Callable[..., Any]
) -> None:
    # Namespace URIs with "/" and ":" in a browse path, down to a variable of a Machinery machine.
    path = "/".join(
        [
            "0:Objects",
            f"nsu={MACHINERY_URI};Machines",
            f"nsu={TEST_URI};Mill-A1",
            f"nsu={DI_URI};Identification",
            f"nsu={DI_URI};SerialNumber",
        ]
    )
    nodes = [mapped(browse_path=path, states={"H-4201": "out_of_service"})]
    async with machinery_server(nodesets_dir) as server:
        adapter = await start_adapter(server.endpoint, nodes)
        await expect_state(adapter, "press-1", MachineState.OUT_OF_SERVICE)
        await expect_state(adapter, "mill-a1", MachineState.EXECUTING)

    assert sorted(statuses(adapter)) == ["lathe-b2", "mill-a1", "press-1"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            mapped(node="nsu=urn:kooperant:test:plc;s=Press9.Status"),
            "has no node 'nsu=urn:kooperant:test:plc;s=Press9.Status' (there ns=",
        ),
        (
            mapped(node="nsu=urn:missing;s=Press1.Status"),
            "has no namespace 'urn:missing'",
        ),
        (
            mapped(browse_path=f"0:Objects/nsu={PLC_URI};Press1/nsu={PLC_URI};Pressure"),
            "has no node at browse_path '0:Objects/nsu=urn:kooperant:test:plc;Press1/",
        ),
        (
            mapped(node=f"nsu={PLC_URI};s=Press1"),
            "is a node of class Object, not a variable",
        ),
    ],
)
async def test_mapping_missing_node_logged(
    entry: dict[str, Any],
    expected: str,
    plc_server: PlcServer,
    start_adapter: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = await start_adapter(plc_server.endpoint, [entry])
    await wait_until(lambda: adapter.failed_attempts >= 2)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert expected in errors[0]
    assert "resource 'press-1'" in errors[0]
    assert plc_server.endpoint in errors[0]
    assert adapter.collect() == []


async def test_mapping_missing_entries_left_out(
    plc_server: PlcServer, start_adapter: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    nodes = [
        mapped(node=f"nsu={PLC_URI};s=Press9.Status"),
        {"resource": "saw-3", "node": f"nsu={PLC_URI};s=Saw.Running", "states": BOOL_STATES},
        mapped(resource="laser-2", node="nsu=urn:missing;s=Laser.Mode"),
    ]
    adapter = await start_adapter(plc_server.endpoint, nodes)

    await expect_state(adapter, "saw-3", MachineState.EXECUTING)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2, errors
    assert "resource 'press-1'" in errors[0]
    assert "resource 'laser-2'" in errors[1]
    assert all("left out until the adapter connects again" in error for error in errors)
    assert sorted(statuses(adapter)) == ["saw-3"]


async def test_mapping_all_entries_missing_named(
    plc_server: PlcServer, start_adapter: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    nodes = [
        mapped(node=f"nsu={PLC_URI};s=Press9.Status"),
        mapped(resource="laser-2", node="nsu=urn:missing;s=Laser.Mode"),
    ]
    adapter = await start_adapter(plc_server.endpoint, nodes)
    await wait_until(lambda: adapter.failed_attempts >= 2)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert "resource 'press-1'" in errors[0]
    assert "resource 'laser-2'" in errors[0]


async def test_server_without_models_names_nodes_key(
    plc_server: PlcServer, start_adapter: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    adapter = await start_adapter(plc_server.endpoint, [])
    await wait_until(lambda: adapter.failed_attempts >= 2)

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "no Machinery namespace" in errors[0]
    assert "under nodes in the adapter settings" in errors[0]


URL = "opc.tcp://127.0.0.1:4840"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            mapped(node="ns=2;s=A", states={"1": "running"}),
            "value '1': invalid state 'running'; allowed states: not_available, out_of_service, "
            "not_executing, executing, unknown",
        ),
        (
            mapped(node="ns=2;s=A", default="idle"),
            "default\n  Value error, invalid state 'idle'; allowed states: not_available",
        ),
        (mapped(node="Press1.Status"), "invalid node id 'Press1.Status': write ns=N;s=NAME"),
        (mapped(node="nsu=urn:plc"), "invalid node id 'nsu=urn:plc': write nsu=URI;s=NAME"),
        (mapped(node="ns=x;s=A"), "invalid node id 'ns=x;s=A'"),
        (
            mapped(node="ns=2;i=abc"),
            "invalid node id 'ns=2;i=abc': write ns=N;s=NAME, nsu=URI;s=NAME or ns=N;i=NUMBER "
            "with a whole NUMBER",
        ),
        (
            mapped(node="ns=99999999999;s=X"),
            "namespace index 99999999999 is above 65535",
        ),
        (
            mapped(browse_path="0:Objects/70000:Press1"),
            "namespace index 70000 of segment '70000:Press1' is above 65535",
        ),
        (
            mapped(browse_path="Objects/2:Press1"),
            "invalid browse path 'Objects/2:Press1': segment 'Objects' needs a namespace",
        ),
        (mapped(browse_path="/"), "invalid browse path '/': it names no node"),
        (mapped(), "give either node or browse_path"),
        (mapped(node="ns=2;s=A", browse_path="0:Objects"), "give either node or browse_path"),
        (mapped(node="ns=2;s=A", states={}), "no values; give at least one"),
        (mapped(node="ns=2;s=A", states={1: "executing", "1": "executing"}), "listed twice"),
        (mapped(node="ns=2;s=A", resource="press 1"), "resource"),
        (mapped(node="ns=2;s=A", speed=3), "speed"),
    ],
)
def test_mapping_settings_invalid(entry: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        OpcUaSettings(url=URL, nodes=[entry])

    assert expected in str(raised.value)
    assert "nodes.0" in str(raised.value)


def test_mapping_settings_duplicate_resource() -> None:
    entry = mapped(node="ns=2;s=A")

    with pytest.raises(ValidationError) as raised:
        OpcUaSettings(url=URL, nodes=[entry, entry])

    assert "resource 'press-1' is mapped twice" in str(raised.value)


def test_mapping_state_for_values() -> None:
    settings = OpcUaSettings(
        url=URL,
        nodes=[
            mapped(
                node="ns=2;s=A",
                states={0: "not_available", "Run": "executing", True: "not_executing"},
                default="out_of_service",
            )
        ],
    )
    rules = settings.nodes[0]

    assert rules.state_for(0) is MachineState.NOT_AVAILABLE
    assert rules.state_for(0.0) is MachineState.NOT_AVAILABLE
    assert rules.state_for("run") is MachineState.EXECUTING
    assert rules.state_for(ua.LocalizedText("RUN")) is MachineState.EXECUTING
    assert rules.state_for(True) is MachineState.NOT_EXECUTING
    assert rules.state_for(5) is MachineState.OUT_OF_SERVICE
    assert rules.state_for(None) is MachineState.UNKNOWN


def test_parse_node_reference_forms() -> None:
    with_uri = parse_node_reference("nsu=urn:plc;s=Press1.Status")
    with_index = parse_node_reference("ns=3;i=1001")
    plain = parse_node_reference("i=85")

    assert with_uri.namespace_uri == "urn:plc"
    assert with_uri.node_id.Identifier == "Press1.Status"
    assert (with_index.namespace_uri, with_index.node_id.to_string()) == (None, "ns=3;i=1001")
    assert plain.node_id.to_string() == "i=85"


def test_parse_browse_path_segments() -> None:
    segments = parse_browse_path("0:Objects/nsu=http://plc.example/ns/;Press 1/3:Status")

    assert [(item.namespace_uri, item.namespace_index, item.name) for item in segments] == [
        (None, 0, "Objects"),
        ("http://plc.example/ns/", 0, "Press 1"),
        (None, 3, "Status"),
    ]


@pytest.mark.parametrize(
    ("example", "indent"),
    [("config/agent.example.yaml", "  #   "), ("config/adapters/opcua.example.yaml", "    # ")],
)
def test_commented_nodes_example_validates(example: str, indent: str) -> None:
    text = (Path(__file__).parents[2] / example).read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index(f"{indent}nodes:")
    # The block ends at the first line that is not indented below "nodes:".
    block = ["nodes:"]
    for line in lines[start + 1 :]:
        if not line.startswith(indent + " "):
            break
        block.append(line.removeprefix(indent))

    nodes = yaml.safe_load("\n".join(block))["nodes"]
    settings = OpcUaSettings(url=URL, nodes=nodes)

    assert settings.nodes[0].resource == "press-1"
    assert settings.nodes[0].state_for(3) is MachineState.OUT_OF_SERVICE
    assert len(settings.nodes) == 2
