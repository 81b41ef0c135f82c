"""Working calendar and free-hours arithmetic, with exact expected hours.

Dates are in Europe/Warsaw. 2026-03-02 is a Monday; clocks go forward on Sunday 2026-03-29
(02:00 CET -> 03:00 CEST) and back on Sunday 2026-10-25 (03:00 CEST -> 02:00 CET).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from adapters.base import MachineStatus
from agent.availability import machine_availability
from agent.calendar import Shift, WorkingCalendar
from agent.config import CalendarSettings
from kooperant.intervals import Interval
from kooperant.protocol import MachineState

WARSAW = ZoneInfo("Europe/Warsaw")
MON_FRI = frozenset(range(5))
DAY_SHIFTS = (Shift(MON_FRI, time(6), time(14)), Shift(MON_FRI, time(14), time(22)))
NIGHT_SHIFT = Shift(MON_FRI, time(22), time(6))


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW)


def span(start: datetime, end: datetime) -> Interval:
    return Interval(start.astimezone(UTC), end.astimezone(UTC))


def calendar(*shifts: Shift, holidays: frozenset[date] = frozenset()) -> WorkingCalendar:
    return WorkingCalendar(WARSAW, shifts, holidays)


def test_default_calendar_matches_two_weekday_shifts() -> None:
    settings = CalendarSettings()
    built = WorkingCalendar(WARSAW, tuple(shift.to_shift() for shift in settings.shifts))

    assert built == calendar(*DAY_SHIFTS)


def test_week_without_orders() -> None:
    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 2), 7)

    assert result.free_hours == 80.0
    assert result.horizon == span(local(2026, 3, 2), local(2026, 3, 9))
    assert result.free_intervals[0] == span(local(2026, 3, 2, 6), local(2026, 3, 2, 22))
    assert len(result.free_intervals) == 5


def test_overlapping_orders_count_once() -> None:
    orders = [
        span(local(2026, 3, 2, 8), local(2026, 3, 2, 12)),
        span(local(2026, 3, 2, 10), local(2026, 3, 2, 16)),
    ]

    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 2), 7, orders=orders)

    assert result.free_hours == 72.0
    assert result.free_intervals[:2] == (
        span(local(2026, 3, 2, 6), local(2026, 3, 2, 8)),
        span(local(2026, 3, 2, 16), local(2026, 3, 2, 22)),
    )


def test_order_across_shift_boundary_and_midnight() -> None:
    # Three shifts on weekdays are one block from Monday 06:00 to Saturday 06:00 (120 h).
    order = span(local(2026, 3, 3, 20), local(2026, 3, 4, 7))

    result = machine_availability(
        calendar(*DAY_SHIFTS, NIGHT_SHIFT), local(2026, 3, 2), 7, orders=[order]
    )

    assert result.free_hours == 120.0 - 11.0
    assert result.free_intervals == (
        span(local(2026, 3, 2, 6), local(2026, 3, 3, 20)),
        span(local(2026, 3, 4, 7), local(2026, 3, 7, 6)),
    )


def test_night_shift_on_spring_change_is_7_hours() -> None:
    saturday_night = Shift(frozenset({5}), time(22), time(6))

    result = machine_availability(calendar(saturday_night), local(2026, 3, 28, 12), 2)

    assert result.free_hours == 7.0
    assert result.free_intervals == (span(local(2026, 3, 28, 22), local(2026, 3, 29, 6)),)


def test_night_shift_on_autumn_change_is_9_hours() -> None:
    saturday_night = Shift(frozenset({5}), time(22), time(6))

    result = machine_availability(calendar(saturday_night), local(2026, 10, 24, 12), 2)

    assert result.free_hours == 9.0


def test_day_shifts_keep_wall_times_across_spring_change() -> None:
    # Monday 2026-03-23 to Monday 2026-04-06: two weeks of 80 h, shifts still start at 06:00.
    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 23), 14)

    assert result.free_hours == 160.0
    assert result.free_intervals[-1] == span(local(2026, 4, 3, 6), local(2026, 4, 3, 22))


def test_order_longer_than_horizon_leaves_nothing() -> None:
    order = span(local(2026, 3, 1), local(2026, 4, 1))

    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 2), 7, orders=[order])

    assert result.free_hours == 0.0
    assert result.free_intervals == ()


def test_order_running_past_horizon_end() -> None:
    order = span(local(2026, 3, 5, 14), local(2026, 4, 30))

    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 2), 7, orders=[order])

    assert result.free_hours == 16.0 * 3 + 8.0
    assert result.free_intervals[-1] == span(local(2026, 3, 5, 6), local(2026, 3, 5, 14))


def test_out_of_service_until_end_of_current_shift() -> None:
    status = MachineStatus("cnc", MachineState.OUT_OF_SERVICE, since=local(2026, 3, 2, 9))

    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 2, 10), 7, status=status)

    # Horizon Mon 10:00 to next Mon 10:00 has 12 + 4 * 16 + 4 = 80 working hours; 10-14 is down.
    assert result.free_hours == 76.0
    assert result.free_intervals[0] == span(local(2026, 3, 2, 14), local(2026, 3, 2, 22))


def test_not_available_outside_shifts_blocks_next_shift() -> None:
    status = MachineStatus("cnc", MachineState.NOT_AVAILABLE, since=local(2026, 3, 7, 9))

    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 7, 12), 7, status=status)

    assert result.free_hours == 80.0 - 8.0
    assert result.free_intervals[0] == span(local(2026, 3, 9, 14), local(2026, 3, 9, 22))


@pytest.mark.parametrize("state", [MachineState.EXECUTING, MachineState.NOT_EXECUTING])
def test_running_states_cause_no_downtime(state: MachineState) -> None:
    status = MachineStatus("cnc", state, since=local(2026, 3, 2, 9))

    result = machine_availability(calendar(*DAY_SHIFTS), local(2026, 3, 2, 10), 7, status=status)

    assert result.free_hours == 80.0


def test_holiday_removes_shifts_starting_on_it() -> None:
    # Thu 24 and Fri 25 December are holidays. Mon 21 to Wed 23 have a day and a night shift
    # (16 h a day), and the Wednesday night shift still counts although it ends on the holiday.
    holidays = frozenset({local(2026, 12, 24).date(), local(2026, 12, 25).date()})
    shifts = (Shift(MON_FRI, time(6), time(14)), NIGHT_SHIFT)

    result = machine_availability(calendar(*shifts, holidays=holidays), local(2026, 12, 21), 7)

    assert result.free_hours == 48.0
    assert result.free_intervals[-1] == span(local(2026, 12, 23, 22), local(2026, 12, 24, 6))


def test_empty_calendar_has_no_free_time() -> None:
    result = machine_availability(calendar(), local(2026, 3, 2), 14)

    assert result.free_hours == 0.0
    assert result.free_intervals == ()
    assert result.horizon.hours == 14 * 24


def test_shift_end_after_picks_containing_then_next() -> None:
    work = calendar(*DAY_SHIFTS)
    limit = local(2026, 3, 20).astimezone(UTC)

    assert work.shift_end_after(local(2026, 3, 2, 13), limit) == local(2026, 3, 2, 14)
    assert work.shift_end_after(local(2026, 3, 2, 14), limit) == local(2026, 3, 2, 22)
    assert work.shift_end_after(local(2026, 3, 2, 23), limit) == local(2026, 3, 3, 14)
    assert work.shift_end_after(local(2026, 3, 2, 23), local(2026, 3, 3, 5)) is None
