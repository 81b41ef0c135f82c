"""Free hours of a machine over the publishing horizon.

Free time = working time (from the calendar) − scheduled orders − downtime, clipped to the horizon
``[now, now + horizon_days)``. All intervals are in UTC.

Downtime rule: while a machine reports ``OutOfService`` or ``NotAvailable``, the agent cannot
know when it comes back, so it counts the machine as down from the state's ``since`` until the
end of the shift that contains ``now``. When ``now`` is outside every shift, the downtime lasts
until the end of the next shift, so a machine that broke over the weekend is not offered for
Monday's first shift. When no shift starts within the horizon, it lasts until the horizon's end.
The next computation after the state changes frees the time again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from adapters.base import MachineStatus
from agent.calendar import WorkingCalendar
from kooperant.intervals import Interval, clip, subtract, total_hours
from kooperant.protocol import MachineState

DOWN_STATES = frozenset({MachineState.OUT_OF_SERVICE, MachineState.NOT_AVAILABLE})


@dataclass(frozen=True, slots=True)
class Availability:
    """Free time of one machine inside ``horizon``: sorted, merged UTC intervals."""

    horizon: Interval
    free_intervals: tuple[Interval, ...]

    @property
    def free_hours(self) -> float:
        return total_hours(self.free_intervals)


def machine_availability(
    calendar: WorkingCalendar,
    now: datetime,
    horizon_days: int,
    *,
    orders: Iterable[Interval] = (),
    status: MachineStatus | None = None,
) -> Availability:
    """Compute the free time of one machine from its calendar, orders and current state."""
    now = now.astimezone(UTC)
    horizon = Interval(now, now + timedelta(days=horizon_days))

    working = calendar.working_intervals(horizon)
    busy = [*orders, *downtime(calendar, status, horizon)]
    free = clip(subtract(working, busy), horizon)
    return Availability(horizon, tuple(free))


def downtime(
    calendar: WorkingCalendar, status: MachineStatus | None, horizon: Interval
) -> list[Interval]:
    """Return the downtime implied by ``status`` at ``horizon.start``, per the module's rule."""
    if status is None or status.state not in DOWN_STATES:
        return []
    now = horizon.start
    since = min(status.since.astimezone(UTC), now)
    end = calendar.shift_end_after(now, horizon.end) or horizon.end
    return [Interval(since, end)]
