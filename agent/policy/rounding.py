"""Coarser free time for rules with ``round``: never more free time, never finer detail.

Free intervals are rounded inward, so a rounded interval lies inside the free time it came from.
``15min`` and ``hour`` move each start up and each end down to the local wall-clock grid and drop
intervals that become empty. ``shift``, ``half_day`` and ``day`` offer whole blocks of working
time, and only blocks that are entirely free. A block is a shift occurrence of the working
calendar, the working time within local 00:00-12:00 or 12:00-24:00, or the working time of a
local day. Single moments (``state_since``) are rounded down and the horizon is widened to the
grid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from agent.calendar import WorkingCalendar
from agent.policy.rules import Rounding
from kooperant.intervals import Interval, normalize, subtract

_GRID_MINUTES = {
    Rounding.QUARTER_HOUR: 15,
    Rounding.HOUR: 60,
    Rounding.HALF_DAY: 12 * 60,
    Rounding.SHIFT: 60,
    Rounding.DAY: 24 * 60,
}
_DAY_MINUTES = 24 * 60
_HALF_DAY = time(12)
_STEP = timedelta(minutes=15)


def floor_to_grid(moment: datetime, minutes: int, zone: ZoneInfo) -> datetime:
    """Round ``moment`` down to the local wall-clock grid of ``minutes`` (a divisor of a day)."""
    local = moment.astimezone(zone)
    minute_of_day = local.hour * 60 + local.minute
    floored = minute_of_day - minute_of_day % minutes
    wall = local.replace(hour=floored // 60, minute=floored % 60, second=0, microsecond=0)
    # A wall time inside a clock change gap can map past ``moment``, so it is capped there.
    return min(wall.astimezone(UTC), moment.astimezone(UTC))


def ceil_to_grid(moment: datetime, minutes: int, zone: ZoneInfo) -> datetime:
    """Round ``moment`` up to the local wall-clock grid of ``minutes`` (a divisor of a day)."""
    floor = floor_to_grid(moment, minutes, zone)
    if floor == moment:
        return floor
    # Wall-clock arithmetic is ambiguous where clocks go back, so step through real time
    # instead. Every UTC offset in use is a multiple of 15 minutes, so each grid point is met.
    candidate = floor + _STEP
    for _ in range(2 * minutes // 15 + 8):
        if candidate > moment and floor_to_grid(candidate, minutes, zone) == candidate:
            return candidate
        candidate += _STEP
    raise ValueError(f"time zone {zone.key} has no {minutes}-minute grid point after {moment}")


def round_free_time(
    intervals: Sequence[Interval], rounding: Rounding, calendar: WorkingCalendar
) -> list[Interval]:
    """Return the free time ``intervals`` shows under ``rounding``, merged and in UTC."""
    free = normalize(intervals)
    if not free:
        return []
    zone = calendar.timezone
    if rounding in (Rounding.QUARTER_HOUR, Rounding.HOUR):
        minutes = _GRID_MINUTES[rounding]
        inward = []
        for item in free:
            start = ceil_to_grid(item.start, minutes, zone)
            end = floor_to_grid(item.end, minutes, zone)
            if start < end:
                inward.append(Interval(start, end))
        return normalize(inward)

    window = Interval(free[0].start, free[-1].end)
    offered: list[Interval] = []
    for block in _blocks(rounding, calendar, window):
        if block and not subtract(block, free):
            offered.extend(block)
    return normalize(offered)


def round_down(moment: datetime, rounding: Rounding, calendar: WorkingCalendar) -> datetime:
    """Round a moment such as ``state_since`` down: to the grid, or to the start of its shift."""
    if rounding is Rounding.SHIFT:
        probe = Interval(moment, moment + timedelta(microseconds=1))
        starts = [shift.start for shift in calendar.shift_intervals(probe) if shift.overlaps(probe)]
        if starts:
            return min(starts)
    return floor_to_grid(moment, _GRID_MINUTES[rounding], calendar.timezone)


def horizon_grid(rounding: Rounding) -> str:
    """Return the grid the horizon is widened to: ``15min``, ``hour`` or ``day``."""
    return rounding.value if rounding in (Rounding.QUARTER_HOUR, Rounding.HOUR) else "day"


def widen_horizon(horizon: Interval, rounding: Rounding, zone: ZoneInfo) -> Interval:
    """Round the horizon's start down and its end up, to the day grid for block roundings."""
    minutes = _GRID_MINUTES[rounding]
    if horizon_grid(rounding) == "day":
        minutes = _DAY_MINUTES
    return Interval(
        floor_to_grid(horizon.start, minutes, zone), ceil_to_grid(horizon.end, minutes, zone)
    )


def _blocks(
    rounding: Rounding, calendar: WorkingCalendar, window: Interval
) -> Iterator[list[Interval]]:
    if rounding is Rounding.SHIFT:
        for shift in calendar.shift_intervals(window):
            yield [shift]
        return
    for start, end in _local_periods(rounding, calendar.timezone, window):
        yield calendar.working_intervals(Interval(start, end))


def _local_periods(
    rounding: Rounding, zone: ZoneInfo, window: Interval
) -> Iterator[tuple[datetime, datetime]]:
    """Yield the local days, or half days, that overlap ``window``, as UTC pairs."""
    day = window.start.astimezone(zone).date()
    last = window.end.astimezone(zone).date()
    while day <= last:
        midnight = _local(day, time(0), zone)
        next_midnight = _local(day + timedelta(days=1), time(0), zone)
        if rounding is Rounding.DAY:
            yield midnight, next_midnight
        else:
            noon = _local(day, _HALF_DAY, zone)
            yield midnight, noon
            yield noon, next_midnight
        day += timedelta(days=1)


def _local(day: date, wall: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)
