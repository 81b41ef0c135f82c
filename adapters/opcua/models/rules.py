"""Common states from the state variables of each companion model.

Each ``*_state`` function takes the latest value per role (see ``MachineNodes``) and the browse
names of the state objects that ``CurrentState/Id`` values point to, and returns a
``MachineState``. The tables follow the state descriptions in the NodeSet2 files of each model;
docs/adapters.md shows them with the reasons.

A state machine's current state is read from the browse name of its ``Id`` target, then from the
text of ``CurrentState`` (compared without case), then from ``Number``. Whenever a machine also
has a ``MachineryItemState`` with a known value, the OPC 40001 rule decides, because it is the
state the model's authors meant for this purpose.
"""

from __future__ import annotations

from collections.abc import Mapping

from asyncua import ua

from kooperant.protocol import MachineState

StateNames = Mapping[ua.NodeId, str | None]

# OPC 40001-1 MachineryItemState_StateMachineType: state number → state name.
ITEM_STATES = {0: "NotAvailable", 1: "OutOfService", 2: "NotExecuting", 3: "Executing"}
# OPC 40001-1 MachineryOperationModeStateMachineType.
OPERATION_MODES = {0: "None", 1: "Maintenance", 2: "Setup", 3: "Processing"}
# OPC 40501-1 ProductionStateMachineType, for programs and jobs.
PRODUCTION_STATES = {0: "Initializing", 1: "Running", 2: "Ended", 3: "Interrupted", 4: "Aborted"}
# OPC 40501-1 MachineOperationMode enumeration.
MACHINE_TOOL_MODES = {
    0: "Manual",
    1: "Automatic",
    2: "Setup",
    3: "AutoWithManualIntervention",
    4: "Service",
    5: "Other",
}
# OPC 30050 PackML state numbers of the three nested state machines.
PACKML_BASE_STATES = {8: "Aborting", 9: "Aborted", 19: "Cleared"}
PACKML_MACHINE_STATES = {1: "Clearing", 2: "Stopped", 7: "Stopping", 18: "Running"}
PACKML_EXECUTE_STATES = {
    3: "Starting",
    4: "Idle",
    5: "Suspended",
    6: "Execute",
    10: "Holding",
    11: "Held",
    12: "Unholding",
    13: "Suspending",
    14: "Unsuspending",
    15: "Resetting",
    16: "Completing",
    17: "Complete",
}
# OPC 30050 ProductionMaintenanceModeEnum, the value of Status/UnitModeCurrent.
PACKML_UNIT_MODES = {0: "Invalid", 1: "Produce", 2: "Maintenance", 3: "Manual"}
# EUROMAP 83 (OPC 40083) MachineModeEnumeration, ProductionStatusEnumeration, JobStatusEnumeration.
EUROMAP_MACHINE_MODES = {
    0: "OTHER",
    1: "AUTOMATIC",
    2: "SEMI_AUTOMATIC",
    3: "MANUAL",
    4: "SETUP",
    5: "SLEEP",
}
EUROMAP_PRODUCTION_STATUSES = {
    0: "OTHER",
    1: "NO_PRODUCTION",
    2: "START_UP",
    3: "READY_FOR_PRODUCTION",
    4: "PRODUCTION",
    5: "DRY_RUN",
}
EUROMAP_JOB_STATUSES = {
    0: "OTHER",
    1: "TRANSFERRED_ASSIGNED",
    2: "SET_UP_ACTIVE",
    3: "SET_UP_INTERRUPTED",
    4: "SET_UP_FINISHED",
    5: "START_UP_ACTIVE",
    6: "JOB_IN_PRODUCTION",
    7: "JOB_INTERRUPTED",
    8: "JOB_FINISHED",
    9: "TEAR_DOWN_ACTIVE",
    10: "TEAR_DOWN_INTERRUPTED",
    11: "TEAR_DOWN_FINISHED",
}

PACKML_STATE_TABLE = {
    "Aborting": MachineState.OUT_OF_SERVICE,
    "Aborted": MachineState.OUT_OF_SERVICE,
    "Clearing": MachineState.OUT_OF_SERVICE,
    "Holding": MachineState.OUT_OF_SERVICE,
    "Held": MachineState.OUT_OF_SERVICE,
    "Stopped": MachineState.NOT_EXECUTING,
    "Stopping": MachineState.NOT_EXECUTING,
    "Idle": MachineState.NOT_EXECUTING,
    "Resetting": MachineState.NOT_EXECUTING,
    "Complete": MachineState.NOT_EXECUTING,
    "Starting": MachineState.EXECUTING,
    "Execute": MachineState.EXECUTING,
    "Completing": MachineState.EXECUTING,
    "Unholding": MachineState.EXECUTING,
    "Suspending": MachineState.EXECUTING,
    "Suspended": MachineState.EXECUTING,
    "Unsuspending": MachineState.EXECUTING,
}
EUROMAP_PRODUCTION_TABLE = {
    "NO_PRODUCTION": MachineState.NOT_EXECUTING,
    "START_UP": MachineState.EXECUTING,
    "READY_FOR_PRODUCTION": MachineState.EXECUTING,
    "PRODUCTION": MachineState.EXECUTING,
    "DRY_RUN": MachineState.EXECUTING,
}
# Job statuses in which the job occupies the machine. The other known ones leave it idle.
EUROMAP_BUSY_JOB_STATUSES = frozenset(
    {
        "SET_UP_ACTIVE",
        "SET_UP_INTERRUPTED",
        "START_UP_ACTIVE",
        "JOB_IN_PRODUCTION",
        "JOB_INTERRUPTED",
        "TEAR_DOWN_ACTIVE",
        "TEAR_DOWN_INTERRUPTED",
    }
)


def current_state_name(
    values: Mapping[str, object], role: str, names: StateNames, states: Mapping[int, str]
) -> str | None:
    """Return the current state of the state machine under ``role``, as named in ``states``."""
    state_id = values.get(role + ".id")
    if isinstance(state_id, ua.NodeId) and not state_id.is_null():
        name = names.get(state_id)
        if name in states.values():
            return name

    text = values.get(role)
    if isinstance(text, ua.LocalizedText):
        text = text.Text
    if isinstance(text, str):
        for name in states.values():
            if name.casefold() == text.casefold():
                return name

    number = values.get(role + ".number")
    if isinstance(number, int) and number in states:
        return states[number]
    return None


def enum_name(value: object, states: Mapping[int, str]) -> str | None:
    """Return the name of an enumeration value, also when a server sends its text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return states.get(value)
    if isinstance(value, ua.LocalizedText):
        value = value.Text
    if isinstance(value, str):
        for name in states.values():
            if name.casefold() == value.casefold():
                return name
    return None


def machinery_state(values: Mapping[str, object], names: StateNames) -> MachineState:
    """Combine ``MachineryItemState`` and ``MachineryOperationMode`` (OPC 40001-1).

    NotAvailable and OutOfService win. Otherwise the Maintenance mode makes the machine
    OutOfService and the Setup mode makes it Executing, because it is being prepared for a
    production order. In the modes None and Processing, or without a mode, the item state
    decides.
    """
    item_state = current_state_name(values, "item_state", names, ITEM_STATES)
    if item_state in ("NotAvailable", "OutOfService"):
        return MachineState(item_state)
    mode_state = operation_mode_state(values, names)
    if mode_state is not None:
        return mode_state
    if item_state is not None:
        return MachineState(item_state)
    return MachineState.UNKNOWN


def operation_mode_state(values: Mapping[str, object], names: StateNames) -> MachineState | None:
    """Return the state that ``MachineryOperationMode`` implies, or None where it implies none."""
    mode = current_state_name(values, "operation_mode", names, OPERATION_MODES)
    if mode == "Maintenance":
        return MachineState.OUT_OF_SERVICE
    if mode == "Setup":
        return MachineState.EXECUTING
    return None


def machine_tool_state(values: Mapping[str, object], names: StateNames) -> MachineState:
    """Read an OPC 40501 machine tool: the Machinery states first, then the tool's own.

    Without a known ``MachineryItemState``, the Machinery operation mode applies as in
    ``machinery_state``. Then the tool's Service mode is OutOfService and its Setup mode
    Executing. A running or interrupted active program, or production job, is Executing. A
    program or job in another known state is NotExecuting.
    """
    if current_state_name(values, "item_state", names, ITEM_STATES) is not None:
        return machinery_state(values, names)
    mode_state = operation_mode_state(values, names)
    if mode_state is not None:
        return mode_state

    mode = enum_name(values.get("machine_tool_mode"), MACHINE_TOOL_MODES)
    if mode == "Service":
        return MachineState.OUT_OF_SERVICE
    if mode == "Setup":
        return MachineState.EXECUTING

    production_roles = ["program", *sorted(role for role in values if _is_job_role(role))]
    production = [
        current_state_name(values, role, names, PRODUCTION_STATES) for role in production_roles
    ]
    if "Running" in production or "Interrupted" in production:
        return MachineState.EXECUTING
    if any(state is not None for state in production):
        return MachineState.NOT_EXECUTING
    return machinery_state(values, names)


def _is_job_role(role: str) -> bool:
    return role.startswith("job.") and role.count(".") == 1


def packml_state(values: Mapping[str, object], names: StateNames) -> MachineState:
    """Read an OPC 30050 PackML object: unit mode, then the outermost state that decides.

    The Maintenance unit mode is OutOfService and the Manual mode Executing. Then the base
    state machine (Aborting, Aborted), the machine state machine (Clearing, Stopping, Stopped)
    and the execute state machine are read from the outside in, following PACKML_STATE_TABLE.
    """
    if current_state_name(values, "item_state", names, ITEM_STATES) is not None:
        return machinery_state(values, names)

    mode = enum_name(values.get("unit_mode"), PACKML_UNIT_MODES)
    if mode == "Maintenance":
        return MachineState.OUT_OF_SERVICE
    if mode == "Manual":
        return MachineState.EXECUTING

    levels = (
        ("base_state", PACKML_BASE_STATES),
        ("machine_state", PACKML_MACHINE_STATES),
        ("execute_state", PACKML_EXECUTE_STATES),
    )
    for role, states in levels:
        name = current_state_name(values, role, names, states)
        if name in PACKML_STATE_TABLE:
            return PACKML_STATE_TABLE[name]
    return MachineState.UNKNOWN


def euromap83_state(values: Mapping[str, object], names: StateNames) -> MachineState:
    """Read a EUROMAP 83 machine: presence, machine mode, production status, job status.

    ``IsPresent`` false and the SLEEP mode are NotAvailable. MANUAL and SETUP are Executing,
    because an operator works on the machine. In the other modes the production status decides,
    then the status of the active job.
    """
    if current_state_name(values, "item_state", names, ITEM_STATES) is not None:
        return machinery_state(values, names)

    if values.get("is_present") is False:
        return MachineState.NOT_AVAILABLE
    mode = enum_name(values.get("machine_mode"), EUROMAP_MACHINE_MODES)
    if mode == "SLEEP":
        return MachineState.NOT_AVAILABLE
    if mode in ("MANUAL", "SETUP"):
        return MachineState.EXECUTING

    production = enum_name(values.get("production_status"), EUROMAP_PRODUCTION_STATUSES)
    if production in EUROMAP_PRODUCTION_TABLE:
        return EUROMAP_PRODUCTION_TABLE[production]

    job = enum_name(values.get("job_status"), EUROMAP_JOB_STATUSES)
    if job is not None and job != "OTHER":
        return (
            MachineState.EXECUTING
            if job in EUROMAP_BUSY_JOB_STATUSES
            else MachineState.NOT_EXECUTING
        )
    return MachineState.UNKNOWN
