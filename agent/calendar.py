"""The working calendar of a member: which hours its machines are staffed.

A shift is a weekly rule ("mon-fri 22:00-06:00"). A shift whose end is not after its start crosses
midnight and belongs to the day it starts on, so a holiday removes the shifts that start on it and
keeps the night shift that started the evening before. Local wall times are turned into instants
with ``zoneinfo``; on the day clocks change a night shift is therefore 7 or 9 real hours long. A
wall time that does not exist (02:30 on the spring change in Europe/Warsaw) is read with the
offset in force before the change, so it lands one hour later, as ``zoneinfo`` does with
``fold=0``.

All intervals returned are in UTC, because ``Interval.duration`` subtracts wall times when both
ends share one ``ZoneInfo`` and would be an hour off across a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kooperant.intervals import Interval, clip, normalize

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Shift:
    """A weekly shift on each of ``weekdays`` (0 is Monday), ``start`` to ``end`` local time."""

    weekdays: frozenset[int]
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Shifts and holidays in one time zone."""

    timezone: ZoneInfo
    shifts: tuple[Shift, ...]
    holidays: frozenset[date] = frozenset()

    def shift_intervals(self, window: Interval) -> list[Interval]:
        """Return every shift overlapping ``window``, in UTC, unmerged and sorted by start."""
        first_day = window.start.astimezone(self.timezone).date() - timedelta(days=1)
        last_day = window.end.astimezone(self.timezone).date()
        found = []
        day = first_day
        while day <= last_day:
            for interval in self._shifts_starting_on(day):
                if interval.overlaps(window):
                    found.append(interval)
            day += timedelta(days=1)
        return sorted(found)

    def working_intervals(self, window: Interval) -> list[Interval]:
        """Return the working time inside ``window`` as sorted, merged UTC intervals."""
        return clip(normalize(self.shift_intervals(window)), window)

    def shift_end_after(self, moment: datetime, limit: datetime) -> datetime | None:
        """Return the end of the shift containing ``moment``, else of the next shift to start.

        When shifts overlap, the latest end among those containing ``moment`` wins. Returns
        ``None`` when no shift contains ``moment`` and none starts before ``limit``.
        """
        moment = moment.astimezone(UTC)
        if limit <= moment:
            return None
        shifts = self.shift_intervals(Interval(moment, limit.astimezone(UTC)))
        containing = [shift.end for shift in shifts if shift.start <= moment < shift.end]
        if containing:
            return max(containing)
        later = [shift for shift in shifts if shift.start > moment]
        return later[0].end if later else None

    def _shifts_starting_on(self, day: date) -> Iterable[Interval]:
        if day in self.holidays:
            return
        for shift in self.shifts:
            if day.weekday() not in shift.weekdays:
                continue
            end_day = day + timedelta(days=1) if shift.crosses_midnight else day
            start = datetime.combine(day, shift.start, tzinfo=self.timezone).astimezone(UTC)
            end = datetime.combine(end_day, shift.end, tzinfo=self.timezone).astimezone(UTC)
            if end > start:
                yield Interval(start, end)
