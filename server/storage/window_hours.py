"""Free machine hours inside a time window, summed in SQL from ``free_intervals``.

A free interval counts with its overlap with the window, ``least(end, window_end) -
greatest(start, window_start)``, and only when that overlap is positive. An open window end
leaves the interval's own start or end in place. Summing in SQL keeps the minimum free filter
of a search inside the statement that pages and counts the matches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, cast, extract, func, literal, select

from kooperant.protocol import ResourceKind
from server.storage.records import FreeHoursInWindow
from server.storage.tables import free_intervals, resources
from server.storage.types import UtcDateTime
from server.storage.visibility import Viewer, visible_offer_conditions

# SQLite's julianday() is a float of about 2.5 million days, so a difference carries an error of
# a few microseconds. Rounding it to whole milliseconds makes 3 h exactly 3.0.
_MILLISECONDS_PER_DAY = 86_400_000.0
_MILLISECONDS_PER_HOUR = 3_600_000.0


def window_free_hours(
    start: datetime | None, end: datetime | None, dialect: str
) -> ColumnElement[Any]:
    """Return the free hours of the current ``resources`` row inside the window, 0 if none.

    The value is a scalar subquery correlated with ``resources``. ``start`` or ``end`` may be
    ``None`` for an open side. ``dialect`` is the database's dialect name.
    """
    overlap = _overlap_hours(start, end, dialect)
    return (
        select(func.coalesce(func.sum(overlap), 0.0))
        .where(
            free_intervals.c.cluster == resources.c.cluster,
            free_intervals.c.member == resources.c.member,
            free_intervals.c.resource == resources.c.resource,
            *_overlaps(start, end),
        )
        .scalar_subquery()
    )


def read_free_hours_in_window(
    connection: Connection,
    viewer: Viewer,
    start: datetime,
    end: datetime,
    now: datetime,
) -> FreeHoursInWindow:
    """Sum the free hours between ``start`` and ``end`` of the machines ``viewer`` sees at ``now``.

    An offer whose free hours are a band is left out, as in a search result with a window,
    where such an offer shows its band and no hours.
    """
    per_machine = (
        select(func.sum(_overlap_hours(start, end, connection.dialect.name)).label("hours"))
        .select_from(resources)
        .join(
            free_intervals,
            (free_intervals.c.cluster == resources.c.cluster)
            & (free_intervals.c.member == resources.c.member)
            & (free_intervals.c.resource == resources.c.resource),
        )
        .where(
            *visible_offer_conditions(viewer, now),
            resources.c.kind == ResourceKind.MACHINE,
            resources.c.free_hours_min.is_(None),
            *_overlaps(start, end),
        )
        .group_by(resources.c.cluster, resources.c.member, resources.c.resource)
        .subquery()
    )
    row = connection.execute(
        select(func.coalesce(func.sum(per_machine.c.hours), 0.0), func.count())
    ).one()
    return FreeHoursInWindow(hours=float(row[0]), machines=int(row[1]))


def _overlaps(start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(free_intervals.c.end > start)
    if end is not None:
        conditions.append(free_intervals.c.start < end)
    return conditions


def _overlap_hours(
    start: datetime | None, end: datetime | None, dialect: str
) -> ColumnElement[Any]:
    if dialect == "postgresql":
        clipped_start = _clip(free_intervals.c.start, start, func.greatest)
        clipped_end = _clip(free_intervals.c.end, end, func.least)
        seconds = extract("epoch", clipped_end - clipped_start)
        return cast(seconds, Float) / 3600.0

    # SQLite stores the instants as fixed-width UTC text (types.py), so the text min() and max()
    # pick the earlier and later instant, and julianday() parses the format.
    clipped_start = _clip(free_intervals.c.start, start, func.max)
    clipped_end = _clip(free_intervals.c.end, end, func.min)
    days = func.julianday(clipped_end) - func.julianday(clipped_start)
    return func.round(days * _MILLISECONDS_PER_DAY) / _MILLISECONDS_PER_HOUR


def _clip(column: ColumnElement[Any], bound: datetime | None, pick: Any) -> ColumnElement[Any]:
    if bound is None:
        return column
    result: ColumnElement[Any] = pick(column, literal(bound, UtcDateTime()))
    return result
