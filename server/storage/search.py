"""Search reads: region and amount filters, sort orders, an offer's history, cluster capacity.

Every statement here is combined with ``visible_offer_conditions``, so audience and expiry are
applied in SQL before any limit or offset.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    UnaryExpression,
    and_,
    case,
    exists,
    func,
    or_,
    select,
)

from kooperant.protocol import Band, ResourceKind
from server.storage.current import ResourceKey, key_condition
from server.storage.queries import only_keys
from server.storage.records import (
    HistoryPage,
    HistoryRecord,
    ProfileRecord,
    ResourceQuery,
)
from server.storage.tables import (
    free_intervals,
    member_profiles,
    offer_history,
    resource_amounts,
    resources,
)
from server.storage.visibility import Viewer, visible_offer_conditions
from server.storage.window_hours import window_free_hours


def search_conditions(query: ResourceQuery, dialect: str) -> list[ColumnElement[bool]]:
    """Return the conditions on ``resources`` for the region, city and minimum free filters.

    ``dialect`` is the database's dialect name, which decides how free hours in a time window
    are computed.
    """
    conditions: list[ColumnElement[bool]] = []
    if query.cluster is not None:
        conditions.append(resources.c.cluster == query.cluster)
    same_member = [
        member_profiles.c.cluster == resources.c.cluster,
        member_profiles.c.member == resources.c.member,
    ]
    if query.regions:
        conditions.append(
            exists().where(*same_member, member_profiles.c.voivodeship.in_(query.regions))
        )
    if query.city is not None:
        city = query.city.strip()
        # NOTE: SQLite's lower() folds ASCII letters only, so there "łódź" does not find "Łódź";
        # the exact spelling always matches.
        same_city = or_(
            member_profiles.c.city == city, func.lower(member_profiles.c.city) == city.lower()
        )
        conditions.append(exists().where(*same_member, same_city))
    if query.min_free is not None:
        conditions.append(_min_free_condition(query, query.min_free, dialect))
    return conditions


def _min_free_condition(query: ResourceQuery, minimum: float, dialect: str) -> ColumnElement[bool]:
    amount_conditions = [
        resource_amounts.c.cluster == resources.c.cluster,
        resource_amounts.c.member == resources.c.member,
        resource_amounts.c.resource == resources.c.resource,
        or_(resource_amounts.c.value >= minimum, resource_amounts.c.band_min >= minimum),
    ]
    if query.quantity is not None:
        amount_conditions.append(resource_amounts.c.quantity == query.quantity)
        return exists().where(*amount_conditions)
    return or_(_free_hours_condition(query, minimum, dialect), exists().where(*amount_conditions))


def _free_hours_condition(
    query: ResourceQuery, minimum: float, dialect: str
) -> ColumnElement[bool]:
    """Return whether an offer has ``minimum`` free hours, inside the window if there is one.

    Without a window the horizon's free hours count, or the band's minimum. With a window a
    machine's free intervals are clipped to it and summed, also for an offer that shows its free
    hours as a band, because its intervals are published anyway. The window does not change
    the condition for other kinds.
    """
    over_horizon = or_(resources.c.free_hours >= minimum, resources.c.free_hours_min >= minimum)
    if query.window_start is None and query.window_end is None:
        return over_horizon

    in_window = window_free_hours(query.window_start, query.window_end, dialect) >= minimum
    is_machine = resources.c.kind == ResourceKind.MACHINE
    return or_(and_(is_machine, in_window), and_(~is_machine, over_horizon))


# Sort orders by a value computed for each matching offer, so every match is read anyway.
COMPUTED_SORTS = frozenset({"free", "next_free"})


def matching_page(
    connection: Connection,
    conditions: list[ColumnElement[bool]],
    query: ResourceQuery,
    now: datetime,
) -> tuple[list[Row[Any]], int]:
    """Return the rows of ``resources`` on the page of ``query`` and the number of all matches.

    Sorted by a key or a column, the page is read apart from the count, because PostgreSQL
    stops reading at the end of the page. Sorted by a computed value (``COMPUTED_SORTS``),
    every match is read anyway, so the count comes with the page's keys as a window function
    and the matches are filtered once: 86 ms instead of 115 ms for a time window sorted by next
    free interval (bench/search.py, 20,000 offers). The same window function made a capability
    search slower, 70 ms instead of 33 ms, because PostgreSQL 15 then planned for an early stop
    that the count prevents.
    """
    order = sort_order(query, now, connection.dialect.name)
    if query.sort not in COMPUTED_SORTS:
        total = _count_matches(connection, conditions)
        rows = connection.execute(
            select(resources)
            .where(*conditions)
            .order_by(*order)
            .limit(query.limit)
            .offset(query.offset)
        ).all()
        return list(rows), total
    keyed = connection.execute(
        select(
            resources.c.cluster,
            resources.c.member,
            resources.c.resource,
            func.count().over().label("matches"),
        )
        .where(*conditions)
        .order_by(*order)
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    if not keyed:
        # A page past the last match has no row to carry the count.
        return [], _count_matches(connection, conditions) if query.offset else 0
    keys = [(row.cluster, row.member, row.resource) for row in keyed]
    found = {
        (row.cluster, row.member, row.resource): row
        for row in connection.execute(only_keys(select(resources), resources, keys, connection))
    }
    # An offer replaced between the two queries is read as it is now; one removed in between
    # is left out of the page.
    return [found[key] for key in keys if key in found], keyed[0].matches


def _count_matches(connection: Connection, conditions: list[ColumnElement[bool]]) -> int:
    total: int = connection.execute(
        select(func.count()).select_from(resources).where(*conditions)
    ).scalar_one()
    return total


def sort_order(query: ResourceQuery, now: datetime, dialect: str) -> list[ColumnElement[Any]]:
    """Return the ORDER BY of ``query.sort``; the resource key breaks ties, so pages are stable.

    Rows without the sorted value (no name, no free figure, no upcoming interval) come last.
    ``dialect`` is the database's dialect name, which decides how that is written.
    """
    key_order: list[ColumnElement[Any]] = [
        resources.c.cluster,
        resources.c.member,
        resources.c.resource,
    ]
    if query.sort == "member":
        return key_order
    if query.sort == "name":
        name = func.lower(func.coalesce(resources.c.name, resources.c.resource))
        return [name, *key_order]
    if query.sort == "kind":
        return [resources.c.kind, *key_order]
    if query.sort == "updated":
        return [resources.c.received_at.desc(), *key_order]
    if query.sort == "free":
        free = _free_value(query, dialect)
        return [*_nulls_last(free.desc(), free, dialect), *key_order]
    next_free = _next_free_start(now)
    return [*_nulls_last(next_free.asc(), next_free, dialect), *key_order]


def _free_value(query: ResourceQuery, dialect: str) -> ColumnElement[Any]:
    """Return the value sorted by "free": with a time window, a machine's free hours inside it.

    That is the figure the results show and ``min_free`` compares with a window.
    """
    horizon = func.coalesce(resources.c.free_hours, resources.c.free_hours_min, _largest_amount())
    if query.window_start is None and query.window_end is None:
        return horizon
    in_window = window_free_hours(query.window_start, query.window_end, dialect)
    return case((resources.c.kind == ResourceKind.MACHINE, in_window), else_=horizon)


def _nulls_last(
    order: UnaryExpression[Any], value: ColumnElement[Any], dialect: str
) -> list[ColumnElement[Any]]:
    # PostgreSQL has NULLS LAST, so the value's subquery runs once per offer; sorting on "is
    # null" first computed it twice, 35 ms of a 145 ms search sorted by next free interval
    # (bench/search.py). SQLite before 3.30 has no NULLS LAST and gets the "is null" sort.
    if dialect == "postgresql":
        return [order.nulls_last()]
    return [case((value.is_(None), 1), else_=0).asc(), order]


def _largest_amount() -> ColumnElement[Any]:
    return (
        select(func.max(func.coalesce(resource_amounts.c.value, resource_amounts.c.band_min)))
        .where(
            resource_amounts.c.cluster == resources.c.cluster,
            resource_amounts.c.member == resources.c.member,
            resource_amounts.c.resource == resources.c.resource,
        )
        .scalar_subquery()
    )


def _next_free_start(now: datetime) -> ColumnElement[Any]:
    return (
        select(func.min(free_intervals.c.start))
        .where(
            free_intervals.c.cluster == resources.c.cluster,
            free_intervals.c.member == resources.c.member,
            free_intervals.c.resource == resources.c.resource,
            free_intervals.c.end > now,
        )
        .scalar_subquery()
    )


def offer_visible(key: ResourceKey, viewer: Viewer, now: datetime) -> ColumnElement[bool]:
    """Return whether the current offer of ``key`` exists and ``viewer`` may see it at ``now``."""
    return exists().where(*key_condition(resources, key), *visible_offer_conditions(viewer, now))


def read_history(
    connection: Connection,
    key: ResourceKey,
    viewer: Viewer,
    now: datetime,
    *,
    limit: int,
    offset: int,
) -> HistoryPage | None:
    """Return a page of the history of ``key``, newest first; ``None`` when the offer is hidden.

    The history is shown only while the current offer exists and is visible, because the
    audience of past versions is the audience of the current one.
    """
    visible = connection.execute(select(offer_visible(key, viewer, now))).scalar_one()
    if not visible:
        return None
    conditions = key_condition(offer_history, key)
    total = connection.execute(
        select(func.count()).select_from(offer_history).where(*conditions)
    ).scalar_one()
    rows = connection.execute(
        select(offer_history.c.generated_at, offer_history.c.received_at, offer_history.c.payload)
        .where(*conditions)
        .order_by(offer_history.c.generated_at.desc(), offer_history.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    items = tuple(_history_record(row.generated_at, row.received_at, row.payload) for row in rows)
    return HistoryPage(items=items, total=total)


def _history_record(generated_at: datetime, received_at: datetime, payload: str) -> HistoryRecord:
    data = json.loads(payload)
    band_data = data.get("free_hours_band")
    band = None
    if band_data is not None:
        maximum = band_data.get("max")
        band = Band(float(band_data["min"]), float(maximum) if maximum is not None else None)
    free_hours = data.get("free_hours")
    return HistoryRecord(
        generated_at=generated_at,
        received_at=received_at,
        state=data.get("state"),
        free_hours=float(free_hours) if free_hours is not None else None,
        free_hours_band=band,
        amounts=tuple(data.get("amounts", [])),
    )


def profiles_statement(viewer: Viewer) -> Select[Any]:
    """Return the member profiles ``viewer`` may read: its own cluster's, or all if anonymous."""
    statement = select(member_profiles).order_by(
        member_profiles.c.cluster, member_profiles.c.member
    )
    if viewer.anonymous:
        return statement
    return statement.where(member_profiles.c.cluster == viewer.cluster)


def profile_record(row: Any) -> ProfileRecord:
    return ProfileRecord(
        cluster=row.cluster,
        member=row.member,
        name=row.name,
        contact_email=row.contact_email,
        contact_phone=row.contact_phone,
        voivodeship=row.voivodeship,
        city=row.city,
        description=row.description,
    )
