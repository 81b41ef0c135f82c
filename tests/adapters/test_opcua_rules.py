"""Table tests of the state rules of each companion model, without a server."""

from __future__ import annotations

import pytest
from asyncua import ua

from adapters.opcua.models.rules import (
    euromap83_state,
    machine_tool_state,
    machinery_state,
    packml_state,
)
from kooperant.protocol import MachineState

ITEM = {
    "NotAvailable": MachineState.NOT_AVAILABLE,
    "OutOfService": MachineState.OUT_OF_SERVICE,
    "NotExecuting": MachineState.NOT_EXECUTING,
    "Executing": MachineState.EXECUTING,
}


def text(value: str) -> ua.LocalizedText:
    return ua.LocalizedText(value, "en")


@pytest.mark.parametrize(
    ("item_state", "mode", "expected"),
    [
        ("NotAvailable", "Setup", MachineState.NOT_AVAILABLE),
        ("OutOfService", "Processing", MachineState.OUT_OF_SERVICE),
        ("Executing", "Maintenance", MachineState.OUT_OF_SERVICE),
        ("NotExecuting", "Setup", MachineState.EXECUTING),
        ("NotExecuting", "Processing", MachineState.NOT_EXECUTING),
        ("Executing", "None", MachineState.EXECUTING),
        ("Executing", None, MachineState.EXECUTING),
        (None, "Maintenance", MachineState.OUT_OF_SERVICE),
        (None, "Processing", MachineState.UNKNOWN),
    ],
)
def test_machinery_state_table(
    item_state: str | None, mode: str | None, expected: MachineState
) -> None:
    values: dict[str, object] = {}
    if item_state is not None:
        values["item_state"] = text(item_state)
    if mode is not None:
        values["operation_mode"] = text(mode)

    assert machinery_state(values, {}) is expected


def test_machinery_state_id_before_text() -> None:
    state_id = ua.NodeId(5004, 3)
    values = {"item_state": text("Executing"), "item_state.id": state_id}

    assert machinery_state(values, {state_id: "OutOfService"}) is MachineState.OUT_OF_SERVICE


def test_machinery_state_number_fallback() -> None:
    values = {"item_state": text("Läuft"), "item_state.number": 2, "operation_mode.number": 2}

    assert machinery_state(values, {}) is MachineState.EXECUTING
    assert machinery_state({"item_state.number": 1}, {}) is MachineState.OUT_OF_SERVICE


def test_machinery_unknown_id_uses_text() -> None:
    values = {"item_state": text("notexecuting"), "item_state.id": ua.NodeId(9, 9)}

    assert machinery_state(values, {ua.NodeId(9, 9): None}) is MachineState.NOT_EXECUTING


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"machine_tool_mode": 4, "program": text("Running")}, MachineState.OUT_OF_SERVICE),
        ({"machine_tool_mode": 2, "program": text("Ended")}, MachineState.EXECUTING),
        ({"machine_tool_mode": 1, "program": text("running")}, MachineState.EXECUTING),
        ({"program": text("Interrupted")}, MachineState.EXECUTING),
        ({"program": text("Aborted")}, MachineState.NOT_EXECUTING),
        ({"program.number": 0}, MachineState.NOT_EXECUTING),
        ({"program": text("Ended"), "job.1": text("Running")}, MachineState.EXECUTING),
        ({"program": None, "job.1": text("Ended")}, MachineState.NOT_EXECUTING),
        ({"machine_tool_mode": 0}, MachineState.UNKNOWN),
        (
            {"item_state": text("NotExecuting"), "program": text("Running")},
            MachineState.NOT_EXECUTING,
        ),
        (
            {"operation_mode": text("Maintenance"), "program": text("Running")},
            MachineState.OUT_OF_SERVICE,
        ),
        (
            {"operation_mode": text("Processing"), "program": text("Running")},
            MachineState.EXECUTING,
        ),
    ],
)
def test_machine_tool_state_table(values: dict[str, object], expected: MachineState) -> None:
    assert machine_tool_state(values, {}) is expected


@pytest.mark.parametrize(
    ("base", "machine", "execute", "expected"),
    [
        ("Aborted", "Running", "Execute", MachineState.OUT_OF_SERVICE),
        ("Aborting", "Running", "Execute", MachineState.OUT_OF_SERVICE),
        ("Cleared", "Clearing", "Execute", MachineState.OUT_OF_SERVICE),
        ("Cleared", "Stopped", "Execute", MachineState.NOT_EXECUTING),
        ("Cleared", "Stopping", "Execute", MachineState.NOT_EXECUTING),
        ("Cleared", "Running", "Idle", MachineState.NOT_EXECUTING),
        ("Cleared", "Running", "Resetting", MachineState.NOT_EXECUTING),
        ("Cleared", "Running", "Complete", MachineState.NOT_EXECUTING),
        ("Cleared", "Running", "Execute", MachineState.EXECUTING),
        ("Cleared", "Running", "Starting", MachineState.EXECUTING),
        ("Cleared", "Running", "Completing", MachineState.EXECUTING),
        ("Cleared", "Running", "Suspended", MachineState.EXECUTING),
        ("Cleared", "Running", "Held", MachineState.OUT_OF_SERVICE),
        ("Cleared", "Running", "Holding", MachineState.OUT_OF_SERVICE),
        ("Cleared", "Running", "Unholding", MachineState.EXECUTING),
        ("Cleared", "Running", None, MachineState.UNKNOWN),
    ],
)
def test_packml_state_table(
    base: str, machine: str, execute: str | None, expected: MachineState
) -> None:
    values: dict[str, object] = {"base_state": text(base), "machine_state": text(machine)}
    if execute is not None:
        values["execute_state"] = text(execute)

    assert packml_state(values, {}) is expected


def test_packml_unit_mode_and_numbers() -> None:
    running_idle = {"base_state.number": 19, "machine_state.number": 18, "execute_state.number": 4}

    assert packml_state(running_idle, {}) is MachineState.NOT_EXECUTING
    assert packml_state({**running_idle, "unit_mode": 2}, {}) is MachineState.OUT_OF_SERVICE
    assert packml_state({**running_idle, "unit_mode": 3}, {}) is MachineState.EXECUTING
    assert packml_state({**running_idle, "unit_mode": 1}, {}) is MachineState.NOT_EXECUTING


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"is_present": False, "machine_mode": 1}, MachineState.NOT_AVAILABLE),
        ({"is_present": True, "machine_mode": 5}, MachineState.NOT_AVAILABLE),
        ({"machine_mode": 4, "production_status": 1}, MachineState.EXECUTING),
        ({"machine_mode": 3}, MachineState.EXECUTING),
        ({"machine_mode": 1, "production_status": 4}, MachineState.EXECUTING),
        ({"machine_mode": 2, "production_status": 2}, MachineState.EXECUTING),
        ({"machine_mode": 1, "production_status": 1}, MachineState.NOT_EXECUTING),
        ({"machine_mode": 1, "production_status": 0, "job_status": 6}, MachineState.EXECUTING),
        ({"machine_mode": 1, "job_status": 8}, MachineState.NOT_EXECUTING),
        ({"machine_mode": 1, "job_status": 0}, MachineState.UNKNOWN),
        ({"machine_mode": 1}, MachineState.UNKNOWN),
        ({"machine_mode": "SETUP"}, MachineState.EXECUTING),
        ({"item_state": text("OutOfService"), "machine_mode": 1}, MachineState.OUT_OF_SERVICE),
    ],
)
def test_euromap83_state_table(values: dict[str, object], expected: MachineState) -> None:
    assert euromap83_state(values, {}) is expected
