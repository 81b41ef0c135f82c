"""Reads: filter conditions, visible members and rejected messages, rows turned into records."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Row,
    Select,
    String,
    bindparam,
    case,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from kooperant.intervals import Interval, clip, total_hours
from kooperant.protocol import Band, Price, ResourceKind
from kooperant.protocol.topics import TOPIC_ROOT
from server.storage.current import ResourceKey
from server.storage.records import ResourceQuery, ResourceRecord
from server.storage.tables import (
    free_intervals,
    member_status,
    members,
    registered_members,
    rejected_messages,
    resource_audience,
    resource_capabilities,
    resources,
)
from server.storage.visibility import Viewer, visible_offer_conditions

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def resource_conditions(query: ResourceQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.kinds:
        conditions.append(resources.c.kind.in_(query.kinds))
    if query.member is not None:
        conditions.append(resources.c.member == query.member)

    same_resource_capability = [
        resource_capabilities.c.cluster == resources.c.cluster,
        resource_capabilities.c.member == resources.c.member,
        resource_capabilities.c.resource == resources.c.resource,
    ]
    for capability in query.capabilities:
        conditions.append(
            exists().where(
                *same_resource_capability, resource_capabilities.c.capability == capability
            )
        )

    if query.window_start is not None or query.window_end is not None:
        overlap = [
            free_intervals.c.cluster == resources.c.cluster,
            free_intervals.c.member == resources.c.member,
            free_intervals.c.resource == resources.c.resource,
        ]
        if query.window_start is not None:
            overlap.append(free_intervals.c.end > query.window_start)
        if query.window_end is not None:
            overlap.append(free_intervals.c.start < query.window_end)
        conditions.append(exists().where(*overlap))
    return conditions


def capabilities_of(
    connection: Connection, keys: Sequence[ResourceKey]
) -> dict[ResourceKey, list[str]]:
    return _values_of(connection, resource_capabilities, "capability", keys)


def audience_of(
    connection: Connection, keys: Sequence[ResourceKey]
) -> dict[ResourceKey, list[str]]:
    return _values_of(connection, resource_audience, "viewer", keys)


def _values_of(
    connection: Connection, table: Any, column: str, keys: Sequence[ResourceKey]
) -> dict[ResourceKey, list[str]]:
    found: dict[ResourceKey, list[str]] = defaultdict(list)
    if not keys:
        return found
    value = table.c[column]
    statement = select(table.c.cluster, table.c.member, table.c.resource, value)
    rows = connection.execute(only_keys(statement, table, keys, connection).order_by(value)).all()
    for row in rows:
        found[(row.cluster, row.member, row.resource)].append(row[3])
    return found


def only_keys(
    statement: Select[Any], table: Any, keys: Sequence[ResourceKey], connection: Connection
) -> Select[Any]:
    """Return ``statement`` restricted to the rows of ``table`` whose resource is in ``keys``.

    On PostgreSQL the keys are three arrays unnested into a derived table and joined. A row-value
    IN list was planned as one index scan per key (360-530 ms for 1000 keys), and three IN lists
    of distinct clusters, members and resources also return the other resources of the listed
    members: for a page of 50 offers from 35 members that was 5,000 intervals instead of 650, and
    turning them into Python objects took most of the request (bench/search.py, 20,000 offers).
    The join reads 50 keys in about 2 ms and 1000 in about 50 ms. SQLite, for small clusters,
    gets the row-value IN list, which it runs as a lookup in a temporary index.
    """
    unique = sorted(set(keys))
    if connection.dialect.name != "postgresql":
        return statement.where(
            tuple_(table.c.cluster, table.c.member, table.c.resource).in_(unique)
        )
    page = (
        func.unnest(
            _text_array("key_clusters", [key[0] for key in unique]),
            _text_array("key_members", [key[1] for key in unique]),
            _text_array("key_resources", [key[2] for key in unique]),
        )
        .table_valued("cluster", "member", "resource")
        .render_derived(name="page_keys")
    )
    return statement.join(
        page,
        (page.c.cluster == table.c.cluster)
        & (page.c.member == table.c.member)
        & (page.c.resource == table.c.resource),
    )


def _text_array(name: str, values: list[str]) -> BindParameter[Any]:
    text_array: ARRAY[str] = ARRAY(String)
    return bindparam(name, values, type_=text_array)


def intervals_of(
    connection: Connection, keys: Sequence[ResourceKey]
) -> dict[ResourceKey, list[Interval]]:
    found: dict[ResourceKey, list[Interval]] = defaultdict(list)
    if not keys:
        return found
    table = free_intervals
    statement = select(
        table.c.cluster, table.c.member, table.c.resource, table.c.start, table.c.end
    )
    rows = connection.execute(
        only_keys(statement, table, keys, connection).order_by(table.c.start)
    ).all()
    for row in rows:
        found[(row.cluster, row.member, row.resource)].append(Interval(row.start, row.end))
    return found


def window(query: ResourceQuery) -> Interval | None:
    if query.window_start is None and query.window_end is None:
        return None
    return Interval(query.window_start or _EARLIEST, query.window_end or _LATEST)


def resource_record(
    row: Row[Any],
    capabilities: dict[ResourceKey, list[str]],
    intervals: dict[ResourceKey, list[Interval]],
    audiences: dict[ResourceKey, list[str]],
    window: Interval | None,
) -> ResourceRecord:
    key = (row.cluster, row.member, row.resource)
    is_machine = row.kind == ResourceKind.MACHINE
    free = intervals.get(key, []) if is_machine else []
    free_hours = row.free_hours if is_machine else None
    band = _band(row) if is_machine else None
    # A banded free_hours stays a band: the owner chose not to show the exact figure.
    if window is not None and is_machine:
        free = clip(free, window)
        free_hours = total_hours(free) if band is None else None

    horizon = None
    if row.horizon_start is not None and row.horizon_end is not None:
        horizon = Interval(row.horizon_start, row.horizon_end)
    payload = json.loads(row.payload)
    audience = audiences.get(key)

    return ResourceRecord(
        cluster=row.cluster,
        member=row.member,
        resource=row.resource,
        kind=row.kind,
        name=row.name,
        capabilities=tuple(capabilities.get(key, [])),
        state=row.state,
        state_since=row.state_since,
        free_hours=free_hours,
        free_intervals=tuple(free),
        horizon=horizon,
        amounts=tuple(payload.get("amounts", [])),
        generated_at=row.generated_at,
        received_at=row.received_at,
        free_hours_band=band,
        price=_price(payload.get("price")),
        suppliers=tuple(payload.get("suppliers", [])),
        customers=tuple(payload.get("customers", [])),
        expires_at=row.expires_at,
        audience=tuple(audience) if audience else None,
        accepts_requests=row.accepts_requests,
    )


def _band(row: Row[Any]) -> Band | None:
    if row.free_hours_min is None:
        return None
    return Band(row.free_hours_min, row.free_hours_max)


def _price(data: dict[str, Any] | None) -> Price | None:
    if data is None:
        return None
    return Price(float(data["value"]), str(data["currency"]), str(data["unit"]))


def members_statement(viewer: Viewer, now: datetime) -> Select[Any]:
    """Return the members ``viewer`` may see at ``now``, with status and registration.

    A member is listed when it has an offer the viewer may see, when it has sent a status
    message (within the viewer's cluster for a member viewer), and always for the viewer itself.
    The ``resources`` column counts only the visible offers. A member viewer of which no message
    has been accepted has no row in ``members`` and is listed with NULL ``first_seen`` and
    ``last_seen``.
    """
    counts = (
        select(
            resources.c.cluster,
            resources.c.member,
            func.count().label("resources"),
        )
        .where(*visible_offer_conditions(viewer, now))
        .group_by(resources.c.cluster, resources.c.member)
        .subquery()
    )
    registered = _registered(members.c.cluster, members.c.member)
    status_known = member_status.c.state.is_not(None)
    member_listed: ColumnElement[bool] = or_(counts.c.resources.is_not(None), status_known)
    if not viewer.anonymous and viewer.member is None:
        member_listed = or_(
            counts.c.resources.is_not(None), status_known & (members.c.cluster == viewer.cluster)
        )
    elif not viewer.anonymous:
        member_listed = or_(
            counts.c.resources.is_not(None),
            status_known & (members.c.cluster == viewer.cluster),
            (members.c.cluster == viewer.cluster) & (members.c.member == viewer.member),
        )
    seen = (
        select(
            members.c.cluster,
            members.c.member,
            members.c.first_seen,
            members.c.last_seen,
            func.coalesce(counts.c.resources, 0).label("resources"),
            member_status.c.state.label("status"),
            _status_since().label("status_since"),
            registered.label("registered"),
        )
        .outerjoin(
            counts,
            (counts.c.cluster == members.c.cluster) & (counts.c.member == members.c.member),
        )
        .outerjoin(
            member_status,
            (member_status.c.cluster == members.c.cluster)
            & (member_status.c.member == members.c.member),
        )
        .where(member_listed)
    )
    if viewer.member is None:
        return seen.order_by(members.c.cluster, members.c.member)

    cluster = literal(viewer.cluster, members.c.cluster.type)
    member = literal(viewer.member, members.c.member.type)
    never_seen = select(
        cluster.label("cluster"),
        member.label("member"),
        null().label("first_seen"),
        null().label("last_seen"),
        literal(0).label("resources"),
        null().label("status"),
        null().label("status_since"),
        _registered(cluster, member).label("registered"),
    ).where(~exists().where(members.c.cluster == viewer.cluster, members.c.member == viewer.member))
    listed = union_all(seen, never_seen).subquery()
    return select(listed).order_by(listed.c.cluster, listed.c.member)


def _registered(cluster: ColumnElement[str], member: ColumnElement[str]) -> ColumnElement[bool]:
    return exists().where(
        registered_members.c.cluster == cluster, registered_members.c.member == member
    )


def _status_since() -> ColumnElement[Any]:
    # An online member is online since its connection began. An offline one is offline since its
    # offline status arrived, because the will carries no time of its own.
    return case(
        (member_status.c.state == "online", member_status.c.connected_at),
        else_=member_status.c.status_received_at,
    )


def rejected_statement(limit: int, viewer: Viewer) -> Select[Any]:
    """Return the latest ``limit`` rejected messages ``viewer`` may see, newest first.

    A member sees only messages on topics below its own ``kooperant/v1/{cluster}/{member}/``,
    and a coordinator account without a member those below ``kooperant/v1/{cluster}/``.
    """
    statement = (
        select(rejected_messages)
        .order_by(rejected_messages.c.received_at.desc(), rejected_messages.c.id.desc())
        .limit(limit)
    )
    if viewer.anonymous:
        return statement
    prefix = f"{TOPIC_ROOT}/{viewer.cluster}/"
    if viewer.member is not None:
        prefix += f"{viewer.member}/"
    return statement.where(rejected_messages.c.topic.startswith(prefix, autoescape=True))
