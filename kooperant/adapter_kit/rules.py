"""The life-cycle rules the conformance kit checks, and the error that names a broken one."""

from __future__ import annotations

from enum import StrEnum

from adapters.base import STOP_TIMEOUT_SECONDS


class Rule(StrEnum):
    """One rule of the adapter life cycle; the value is the id printed in a failure."""

    SETTINGS_MODEL = "settings.model"
    SETTINGS_SAMPLE = "settings.sample"
    SETTINGS_UNKNOWN_KEY = "settings.unknown_key"
    SETTINGS_FROZEN = "settings.frozen"
    SETTINGS_NESTED = "settings.nested"
    INIT_NO_IO = "init.no_io"
    INIT_DURATION = "init.duration"
    START_RETURNS = "start.returns"
    COLLECT_TYPE = "collect.type"
    SNAPSHOT_RAISES = "snapshot.raises"
    SNAPSHOT_NO_IO = "snapshot.no_io"
    SNAPSHOT_DURATION = "snapshot.duration"
    LOOP_NOT_BLOCKED = "loop.not_blocked"
    RESOURCE_ID = "observation.resource_id"
    FINITE_NUMBER = "observation.finite"
    AWARE_TIME = "observation.aware_time"
    HEALTH_TYPE = "health.type"
    WITHHELD_TYPE = "withheld.type"
    EXPECTED = "expected.observations"
    STOP_DURATION = "stop.duration"
    STOP_TASKS = "stop.tasks"
    STOP_WITHOUT_START = "stop.without_start"
    STOP_AFTER_FAILED_START = "stop.after_failed_start"


RULE_TEXT: dict[Rule, str] = {
    Rule.SETTINGS_MODEL: "settings_model must be a subclass of adapters.base.AdapterSettings",
    Rule.SETTINGS_SAMPLE: "settings_model must build from the sample settings",
    Rule.SETTINGS_UNKNOWN_KEY: "settings_model must reject unknown keys (extra='forbid')",
    Rule.SETTINGS_FROZEN: "settings must be frozen, so no part of the agent can change them",
    Rule.SETTINGS_NESTED: "every model inside the settings must reject unknown keys "
    "(extra='forbid') and infinite or NaN numbers (allow_inf_nan=False), as AdapterSettings does",
    Rule.INIT_NO_IO: "__init__ must not do I/O: no files, sockets or processes",
    Rule.INIT_DURATION: "__init__ must return at once, because the agent builds adapters in order",
    Rule.START_RETURNS: "start() must return promptly without raising, even when the source is "
    "unreachable, and retry in the background",
    Rule.COLLECT_TYPE: "collect() must return a list of Observation instances "
    "(MachineStatus, ScheduledWork, ResourceAmounts, SupplyStock from adapters.base)",
    Rule.SNAPSHOT_RAISES: "collect(), health() and withheld_kinds() must not raise",
    Rule.SNAPSHOT_NO_IO: "collect(), health() and withheld_kinds() must not do I/O, because they "
    "run on the agent's event loop",
    Rule.SNAPSHOT_DURATION: "collect(), health() and withheld_kinds() must return at once, because "
    "they run on the agent's event loop",
    Rule.LOOP_NOT_BLOCKED: "the adapter must not block the event loop; run blocking calls "
    "with asyncio.to_thread",
    Rule.RESOURCE_ID: "resource ids must match kooperant.protocol.IDENTIFIER_PATTERN",
    Rule.FINITE_NUMBER: "amounts, bands and prices must be finite numbers",
    Rule.AWARE_TIME: "times must be timezone-aware, because the agent compares them with its clock",
    Rule.HEALTH_TYPE: "health() must return a list of adapters.base.SourceHealth",
    Rule.WITHHELD_TYPE: "withheld_kinds() must return a mapping of ResourceKind to a str reason",
    Rule.EXPECTED: "the expected observations must appear in time",
    Rule.STOP_DURATION: "stop() must finish without raising within STOP_TIMEOUT_SECONDS "
    f"({STOP_TIMEOUT_SECONDS:g} s)",
    Rule.STOP_TASKS: "stop() must end every task the adapter started",
    Rule.STOP_WITHOUT_START: "stop() must be safe on an adapter that was never started",
    Rule.STOP_AFTER_FAILED_START: "stop() must be safe after a start() that was cancelled, as the "
    "agent cancels a start that exceeds its time limit",
}


class ConformanceError(AssertionError):
    """Raised when an adapter breaks a life-cycle rule; the message names the rule and the value.

    It subclasses ``AssertionError`` so that pytest and unittest report it as a test failure.
    """

    def __init__(self, rule: Rule, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"[{rule}] {RULE_TEXT[rule]}: {detail}")
