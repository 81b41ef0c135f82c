"""StateHistory: the machine states a rule with delay_minutes looks back at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.policy import StateHistory
from kooperant.protocol import MachineState

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
RUNNING = MachineState.EXECUTING
IDLE = MachineState.NOT_EXECUTING


def minutes(count: int) -> datetime:
    return T0 + timedelta(minutes=count)


def test_state_at_after_changes() -> None:
    history = StateHistory()
    history.record("cnc-1", RUNNING, minutes(0))
    history.record("cnc-1", IDLE, minutes(10))

    assert history.state_at("cnc-1", minutes(-1)) is None
    assert history.state_at("cnc-1", minutes(0)) == (RUNNING, minutes(0))
    assert history.state_at("cnc-1", minutes(9)) == (RUNNING, minutes(0))
    assert history.state_at("cnc-1", minutes(10)) == (IDLE, minutes(10))
    assert history.state_at("cnc-1", minutes(500)) == (IDLE, minutes(10))


def test_unknown_resource_has_no_state() -> None:
    history = StateHistory()
    history.record("cnc-1", RUNNING, minutes(0))

    assert history.state_at("laser-2", minutes(5)) is None


def test_repeated_record_changes_nothing() -> None:
    history = StateHistory()
    for _ in range(3):
        history.record("cnc-1", RUNNING, minutes(0))
        history.record("cnc-1", IDLE, minutes(10))

    assert history.state_at("cnc-1", minutes(5)) == (RUNNING, minutes(0))
    assert history.state_at("cnc-1", minutes(15)) == (IDLE, minutes(10))


def test_earlier_since_replaces_later_changes() -> None:
    history = StateHistory()
    history.record("cnc-1", RUNNING, minutes(0))
    history.record("cnc-1", IDLE, minutes(10))
    history.record("cnc-1", MachineState.OUT_OF_SERVICE, minutes(5))

    assert history.state_at("cnc-1", minutes(3)) == (RUNNING, minutes(0))
    assert history.state_at("cnc-1", minutes(12)) == (MachineState.OUT_OF_SERVICE, minutes(5))


def test_same_since_new_state_replaces() -> None:
    history = StateHistory()
    history.record("cnc-1", RUNNING, minutes(0))
    history.record("cnc-1", IDLE, minutes(0))

    assert history.state_at("cnc-1", minutes(1)) == (IDLE, minutes(0))


def test_prune_keeps_state_in_force() -> None:
    history = StateHistory()
    history.record("cnc-1", RUNNING, minutes(0))
    history.record("cnc-1", IDLE, minutes(10))
    history.record("cnc-1", RUNNING, minutes(20))

    history.prune(minutes(15))

    assert history.state_at("cnc-1", minutes(5)) is None
    assert history.state_at("cnc-1", minutes(15)) == (IDLE, minutes(10))
    assert history.state_at("cnc-1", minutes(25)) == (RUNNING, minutes(20))


def test_other_time_zones_compare_by_instant() -> None:
    history = StateHistory()
    history.record("cnc-1", RUNNING, minutes(0).astimezone())

    assert history.state_at("cnc-1", minutes(1)) == (RUNNING, minutes(0))
