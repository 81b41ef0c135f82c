"""Tests of the OPC UA adapter and of browse against servers of each companion model.

Every server imports the official NodeSet2 files (tests/support/companion_servers.py and
machinery_server.py), and the tests skip where those files are absent. Each test changes the
state variables on the server and waits for the adapter to report the mapped state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from adapters.opcua import OpcUaAdapter, OpcUaSettings
from agent.cli import app
from kooperant.protocol import MachineState
from tests.support.companion_servers import (
    MACHINE_TOOL_EXAMPLE,
    euromap83_server,
    machine_tool_server,
    packml_server,
)
from tests.support.machinery_server import MachineSpec, machinery_server
from tests.support.opcua_recording import Recorder, expect_state, statuses

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.nodesets]

FAST = {"publishing_interval_ms": 100, "sampling_interval_ms": 50}


@pytest.fixture
def machine_tool_nodesets(nodesets_dir: Path) -> Path:
    """The nodesets folder, or a skip where MachineTool 1.01.1 and its example are not beside it."""
    if not (nodesets_dir / MACHINE_TOOL_EXAMPLE).is_file():
        pytest.skip(f"MachineTool example not found at {nodesets_dir / MACHINE_TOOL_EXAMPLE}")
    return nodesets_dir


@pytest.fixture
async def start_adapter() -> AsyncIterator[Callable[..., Any]]:
    """A factory of started adapters that are all stopped after the test."""
    started: list[OpcUaAdapter] = []

    async def start(url: str, **settings: Any) -> OpcUaAdapter:
        adapter = OpcUaAdapter("models", OpcUaSettings(url=url, **settings), Recorder().context)
        started.append(adapter)
        await adapter.start()
        return adapter

    yield start
    for adapter in started:
        await adapter.stop()


def browse_json(url: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["browse", url, "--json"], env={"KOOPERANT_LANG": "en"})
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def browse_text(url: str, language: str = "en") -> str:
    result = CliRunner().invoke(app, ["browse", url], env={"KOOPERANT_LANG": language})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def snippet_settings(snippet: str) -> OpcUaSettings:
    entry = dict(yaml.safe_load(snippet)["adapters"][0])
    del entry["type"], entry["name"]
    return OpcUaSettings.model_validate(entry)


def machine_entry(document: dict[str, Any], browse_name: str) -> dict[str, Any]:
    entries = [item for item in document["machines"] if item["browse_name"] == browse_name]
    assert len(entries) == 1, [item["browse_name"] for item in document["machines"]]
    return entries[0]


async def test_operation_mode_overrides_item_state(
    nodesets_dir: Path, start_adapter: Callable[..., Any]
) -> None:
    spec = MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing", "Processing")
    async with machinery_server(nodesets_dir, [spec]) as server:
        adapter = await start_adapter(server.endpoint, **FAST)
        await expect_state(adapter, "mill-a1", MachineState.EXECUTING)

        await server.set_state("Mill-A1", "NotExecuting")
        await server.set_operation_mode("Mill-A1", "Setup")
        await expect_state(adapter, "mill-a1", MachineState.EXECUTING)

        await server.set_operation_mode("Mill-A1", "Maintenance")
        await expect_state(adapter, "mill-a1", MachineState.OUT_OF_SERVICE)

        await server.set_operation_mode("Mill-A1", "None")
        await expect_state(adapter, "mill-a1", MachineState.NOT_EXECUTING)

        await server.set_state("Mill-A1", "NotAvailable")
        await server.set_operation_mode("Mill-A1", "Setup")
        await expect_state(adapter, "mill-a1", MachineState.NOT_AVAILABLE)


async def test_operation_mode_in_browse_output(nodesets_dir: Path) -> None:
    spec = MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "NotExecuting", "Maintenance")
    async with machinery_server(nodesets_dir, [spec]) as server:
        document = await asyncio.to_thread(browse_json, server.endpoint)

    mill = machine_entry(document, "Mill-A1")
    values = {item["role"]: item["value"] for item in mill["variables"]}
    assert mill["model"] == "machinery"
    assert values["item_state"] == "NotExecuting"
    assert values["operation_mode"] == "Maintenance"
    assert values["operation_mode.number"] == "1"
    assert mill["state"] == "OutOfService"


async def test_machine_tool_states_followed(
    machine_tool_nodesets: Path, start_adapter: Callable[..., Any]
) -> None:
    async with machine_tool_server(machine_tool_nodesets) as server:
        adapter = await start_adapter(server.endpoint, **FAST)
        # The example ships its active program in state "running" and operation mode Automatic.
        await expect_state(adapter, "samplemachinetool", MachineState.EXECUTING)
        tool = statuses(adapter)["samplemachinetool"]
        assert tool.identification == {
            "Manufacturer": "VDW e.V.",
            "Model": "Sample Machine Tool",
            "SerialNumber": "123456",
        }

        await server.set_program_state("SampleMachineTool", "Ended")
        await expect_state(adapter, "samplemachinetool", MachineState.NOT_EXECUTING)

        await server.set_job_state("Running")
        await expect_state(adapter, "samplemachinetool", MachineState.EXECUTING)

        await server.set_job_state("Ended")
        await server.set_program_state("SampleMachineTool", "Interrupted")
        await expect_state(adapter, "samplemachinetool", MachineState.EXECUTING)

        await server.set_tool_mode("SampleMachineTool", 4)
        await expect_state(adapter, "samplemachinetool", MachineState.OUT_OF_SERVICE)

        await server.set_tool_mode("SampleMachineTool", 2)
        await expect_state(adapter, "samplemachinetool", MachineState.EXECUTING)


async def test_machine_tool_item_state_decides(
    machine_tool_nodesets: Path, start_adapter: Callable[..., Any]
) -> None:
    async with machine_tool_server(machine_tool_nodesets) as server:
        adapter = await start_adapter(server.endpoint, **FAST)
        # Every state variable of the second example machine is null.
        await expect_state(adapter, "samplemachinetool_v101", MachineState.UNKNOWN)

        await server.set_program_state("SampleMachineTool_v101", "Running")
        await expect_state(adapter, "samplemachinetool_v101", MachineState.EXECUTING)

        await server.set_item_state("SampleMachineTool_v101", "NotExecuting")
        await expect_state(adapter, "samplemachinetool_v101", MachineState.NOT_EXECUTING)

        await server.set_operation_mode("SampleMachineTool_v101", "Maintenance")
        await expect_state(adapter, "samplemachinetool_v101", MachineState.OUT_OF_SERVICE)


async def test_machine_tool_browse_output(machine_tool_nodesets: Path) -> None:
    async with machine_tool_server(machine_tool_nodesets) as server:
        document = await asyncio.to_thread(browse_json, server.endpoint)
        text = await asyncio.to_thread(browse_text, server.endpoint)

    tool = machine_entry(document, "SampleMachineTool")
    roles = [item["role"] for item in tool["variables"]]
    assert tool["model"] == "machine_tool"
    assert tool["state"] == "Executing"
    assert roles[:4] == ["machine_tool_mode", "program", "program.id", "program.number"]
    assert "job.1" in roles
    assert machine_entry(document, "SampleMachineTool_v101")["state"] == "Unknown"
    assert "\nOPC 40501 MachineTool: 2 machines\n• SampleMachineTool\n" in text
    assert "  program: running (node ns=" in text
    settings = snippet_settings(document["config"])
    assert settings.machines == {
        "SampleMachineTool": "samplemachinetool",
        "SampleMachineTool_v101": "samplemachinetool_v101",
    }


async def test_packml_states_followed(
    nodesets_dir: Path, start_adapter: Callable[..., Any]
) -> None:
    async with packml_server(nodesets_dir) as server:
        adapter = await start_adapter(server.endpoint, machines={"Filler": "filler-1"}, **FAST)
        await expect_state(adapter, "filler-1", MachineState.NOT_EXECUTING)
        assert statuses(adapter)["filler-1"].name == "Filler"

        steps = [
            (("Cleared", "Running", "Execute"), MachineState.EXECUTING),
            (("Cleared", "Running", "Suspended"), MachineState.EXECUTING),
            (("Cleared", "Running", "Held"), MachineState.OUT_OF_SERVICE),
            (("Cleared", "Running", "Complete"), MachineState.NOT_EXECUTING),
            (("Cleared", "Stopped", "Complete"), MachineState.NOT_EXECUTING),
            (("Aborted", "Stopped", "Execute"), MachineState.OUT_OF_SERVICE),
            (("Cleared", "Clearing", "Idle"), MachineState.OUT_OF_SERVICE),
            (("Cleared", "Running", "Starting"), MachineState.EXECUTING),
        ]
        for levels, expected in steps:
            await server.set_states(*levels)
            await expect_state(adapter, "filler-1", expected)

        await server.set_unit_mode(2)
        await expect_state(adapter, "filler-1", MachineState.OUT_OF_SERVICE)
        await server.set_unit_mode(3)
        await server.set_states("Cleared", "Running", "Idle")
        await expect_state(adapter, "filler-1", MachineState.EXECUTING)


async def test_packml_browse_output(nodesets_dir: Path) -> None:
    async with packml_server(nodesets_dir) as server:
        document = await asyncio.to_thread(browse_json, server.endpoint)
        polish = await asyncio.to_thread(browse_text, server.endpoint, "pl")

    filler = machine_entry(document, "Filler")
    values = {item["role"]: item["value"] for item in filler["variables"]}
    assert filler["model"] == "packml"
    assert values["base_state"] == "Cleared"
    assert values["machine_state"] == "Running"
    assert values["execute_state"] == "Idle"
    assert values["unit_mode"] == "1"
    assert filler["state"] == "NotExecuting"
    assert "\nOPC 30050 PackML: 1 maszyna\n• Filler\n" in polish
    assert "  execute_state: Idle (węzeł ns=" in polish
    assert "  → stan w kooperant: NotExecuting\n" in polish
    assert snippet_settings(document["config"]).machines == {"Filler": "filler"}


async def test_euromap83_states_followed(
    nodesets_dir: Path, start_adapter: Callable[..., Any]
) -> None:
    async with euromap83_server(nodesets_dir) as server:
        adapter = await start_adapter(server.endpoint, **FAST)
        await expect_state(adapter, "imm-07", MachineState.EXECUTING)
        await expect_state(adapter, "imm-08", MachineState.EXECUTING)
        assert statuses(adapter)["imm-07"].identification == {
            "Manufacturer": "Engel",
            "SerialNumber": "E-7007",
        }

        await server.set_production_status("IMM-07", 1)
        await expect_state(adapter, "imm-07", MachineState.NOT_EXECUTING)

        await server.set_machine_mode("IMM-07", 4)
        await expect_state(adapter, "imm-07", MachineState.EXECUTING)

        await server.set_machine_mode("IMM-07", 5)
        await expect_state(adapter, "imm-07", MachineState.NOT_AVAILABLE)

        await server.set_machine_mode("IMM-07", 1)
        await server.set_present("IMM-07", False)
        await expect_state(adapter, "imm-07", MachineState.NOT_AVAILABLE)

        await server.set_present("IMM-08", False)
        await expect_state(adapter, "imm-08", MachineState.NOT_AVAILABLE)


async def test_euromap83_browse_output(nodesets_dir: Path) -> None:
    async with euromap83_server(nodesets_dir) as server:
        document = await asyncio.to_thread(browse_json, server.endpoint)

    assert sorted(item["browse_name"] for item in document["machines"]) == ["IMM-07", "IMM-08"]
    for name in ("IMM-07", "IMM-08"):
        machine = machine_entry(document, name)
        values = {item["role"]: item["value"] for item in machine["variables"]}
        assert machine["model"] == "euromap83"
        assert values == {"is_present": "True", "machine_mode": "1", "production_status": "4"}
        assert machine["state"] == "Executing"
    assert snippet_settings(document["config"]).machines == {
        "IMM-08": "imm-08",
        "IMM-07": "imm-07",
    }
