"""Free machine hours per offer and day, kept at ingest for the coordinator's capacity plot.

Each row of ``capacity_days`` is the last version of an offer generated on one calendar day in
the clusters' time zone: its ``generated_at`` and free hours. ``store_offer`` writes it in the
same transaction as the history row, so the plot reads one row per offer and day instead of
parsing every version's payload. On 7.2 million history rows (bench/search.py) the old read took
21 s for 30 days. Offers without exact free hours (no machine, or hours shown as a band) have no
rows, as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from kooperant.protocol import ResourceKind
from server.storage.current import ResourceKey, key_condition
from server.storage.records import CapacityPoint
from server.storage.tables import capacity_days, resources
from server.storage.visibility import Viewer, visible_offer_conditions

# Days of the capacity plot are calendar days in the clusters' time zone.
CAPACITY_TIMEZONE = ZoneInfo("Europe/Warsaw")


def capacity_day(moment: datetime) -> date:
    """Return the calendar day of ``moment`` in the clusters' time zone."""
    return moment.astimezone(CAPACITY_TIMEZONE).date()


def record_capacity(
    connection: Connection, key: ResourceKey, generated_at: datetime, free_hours: float | None
) -> None:
    """Keep ``free_hours`` as the value of its day unless a later version of that day is stored.

    A version generated at the same time as the stored one replaces it, as the later received
    version of the history did. Callers hold the member's write lock, so no other writer changes
    these rows in between.
    """
    if free_hours is None:
        return
    day = capacity_day(generated_at)
    conditions = [*key_condition(capacity_days, key), capacity_days.c.day == day]
    stored = connection.execute(select(capacity_days.c.generated_at).where(*conditions)).first()
    if stored is None:
        connection.execute(
            insert(capacity_days).values(
                cluster=key[0],
                member=key[1],
                resource=key[2],
                day=day,
                generated_at=generated_at,
                free_hours=free_hours,
            )
        )
    elif stored.generated_at <= generated_at:
        connection.execute(
            update(capacity_days)
            .where(*conditions)
            .values(generated_at=generated_at, free_hours=free_hours)
        )


def record_capacities(
    connection: Connection, versions: Sequence[tuple[ResourceKey, datetime, float | None]]
) -> None:
    """Record the free hours of many offer versions, as ``record_capacity`` on each in order.

    ``versions`` are (key, ``generated_at``, free hours). Per resource and day, the last of the
    versions with the latest ``generated_at`` is the one ``record_capacity`` would keep, and it
    replaces the stored row unless that one was generated later.
    """
    latest: dict[tuple[ResourceKey, date], tuple[datetime, float]] = {}
    for key, generated_at, free_hours in versions:
        if free_hours is None:
            continue
        day_key = (key, capacity_day(generated_at))
        kept = latest.get(day_key)
        if kept is None or kept[0] <= generated_at:
            latest[day_key] = (generated_at, free_hours)
    if not latest:
        return

    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(capacity_days)
    upsert = statement.on_conflict_do_update(
        index_elements=[
            capacity_days.c.cluster,
            capacity_days.c.member,
            capacity_days.c.resource,
            capacity_days.c.day,
        ],
        set_={
            "generated_at": statement.excluded.generated_at,
            "free_hours": statement.excluded.free_hours,
        },
        where=capacity_days.c.generated_at <= statement.excluded.generated_at,
    )
    rows = [
        {
            "cluster": key[0],
            "member": key[1],
            "resource": key[2],
            "day": day,
            "generated_at": generated_at,
            "free_hours": free_hours,
        }
        for (key, day), (generated_at, free_hours) in latest.items()
    ]
    connection.execute(upsert, rows)


def forget_capacity(connection: Connection, key: ResourceKey) -> None:
    """Delete the daily values of ``key``, with its history."""
    connection.execute(delete(capacity_days).where(*key_condition(capacity_days, key)))


def read_capacity(
    connection: Connection, viewer: Viewer, now: datetime, since: datetime
) -> list[CapacityPoint]:
    """Return the free machine hours per day since ``since`` of the offers ``viewer`` may see.

    Each day sums, per offer, the free hours of its last version generated that day, counted
    when that version was generated between ``since`` and ``now``. Only offers that are current
    and visible now count, so a hidden or withdrawn offer adds nothing.
    """
    visible_machines = (
        select(resources.c.cluster, resources.c.member, resources.c.resource)
        .where(*visible_offer_conditions(viewer, now), resources.c.kind == ResourceKind.MACHINE)
        .subquery()
    )
    rows = connection.execute(
        select(
            capacity_days.c.day,
            func.sum(capacity_days.c.free_hours).label("free_hours"),
            func.count().label("offers"),
        )
        .join(
            visible_machines,
            (visible_machines.c.cluster == capacity_days.c.cluster)
            & (visible_machines.c.member == capacity_days.c.member)
            & (visible_machines.c.resource == capacity_days.c.resource),
        )
        .where(
            capacity_days.c.day >= capacity_day(since),
            capacity_days.c.day <= capacity_day(now),
            capacity_days.c.generated_at >= since,
            capacity_days.c.generated_at <= now,
        )
        .group_by(capacity_days.c.day)
        .order_by(capacity_days.c.day)
    )
    return [
        CapacityPoint(day=row.day, free_hours=float(row.free_hours), offers=row.offers)
        for row in rows
    ]


def backfill_capacity(connection: Connection, history: Any) -> None:
    """Fill ``capacity_days`` from ``history``, a table with the columns of ``offer_history``.

    PostgreSQL does it in one statement. Elsewhere the payloads are read in order and parsed.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text(_POSTGRESQL_BACKFILL))
        # Without statistics the planner took the new table for a few rows and sorted the
        # capacity read on disk: 1.2 s instead of 0.2 s for 30 days of 822,000 rows.
        connection.execute(text("ANALYZE capacity_days"))
        return
    rows = connection.execute(
        select(
            history.c.cluster,
            history.c.member,
            history.c.resource,
            history.c.generated_at,
            history.c.payload,
        ).order_by(history.c.generated_at, history.c.id)
    )
    for row in rows:
        record_capacity(
            connection,
            (row.cluster, row.member, row.resource),
            row.generated_at,
            _free_hours(row.payload),
        )


def _free_hours(payload: str) -> float | None:
    try:
        value = json.loads(payload).get("free_hours")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


_POSTGRESQL_BACKFILL = """
INSERT INTO capacity_days (cluster, member, resource, day, generated_at, free_hours)
SELECT DISTINCT ON (cluster, member, resource, day)
    cluster, member, resource, day, generated_at, free_hours
FROM (
    SELECT cluster, member, resource, id, generated_at,
        (generated_at AT TIME ZONE 'Europe/Warsaw')::date AS day,
        CASE WHEN json_typeof(payload::json -> 'free_hours') = 'number'
            THEN (payload::json ->> 'free_hours')::double precision END AS free_hours
    FROM offer_history
) AS versions
WHERE free_hours IS NOT NULL
ORDER BY cluster, member, resource, day, generated_at DESC, id DESC
"""
