"""Writes about members: last seen, status from birth and will messages, and registration.

Each function runs inside the caller's transaction, which holds the member's write lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Row, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from server.storage.tables import member_status, members, registered_members

if TYPE_CHECKING:
    from kooperant.protocol import MemberStatus

OFFLINE = "offline"


def member_condition(table: Any, cluster: str, member: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = (table.c.cluster == cluster) & (table.c.member == member)
    return condition


def touch_member(connection: Connection, cluster: str, member: str, seen: datetime) -> None:
    """Record that a message of ``cluster/member`` was accepted at ``seen``."""
    condition = member_condition(members, cluster, member)
    last_seen = connection.execute(
        select(members.c.last_seen).where(condition)
    ).scalar_one_or_none()
    if last_seen is None:
        connection.execute(
            insert(members).values(cluster=cluster, member=member, first_seen=seen, last_seen=seen)
        )
    elif seen > last_seen:
        connection.execute(update(members).where(condition).values(last_seen=seen))


def touch_members(
    connection: Connection, seen: dict[tuple[str, str], tuple[datetime, datetime]]
) -> None:
    """Record accepted messages of many members in one statement.

    ``seen`` maps (cluster, member) to the receive time of its first accepted message in the
    caller's order and the latest receive time. A new member gets them as ``first_seen`` and
    ``last_seen``, and a known one keeps the later of its ``last_seen`` and the latest. That is
    what ``touch_member`` called once per message in that order leaves.
    """
    if not seen:
        return
    upsert: postgresql.Insert | sqlite.Insert
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(members)
        later = func.greatest(members.c.last_seen, statement.excluded.last_seen)
        upsert = statement.on_conflict_do_update(
            index_elements=[members.c.cluster, members.c.member], set_={"last_seen": later}
        )
    else:
        sqlite_statement = sqlite.insert(members)
        # SQLite stores the instants as fixed-width UTC text, so the text max() is the later one.
        later = func.max(members.c.last_seen, sqlite_statement.excluded.last_seen)
        upsert = sqlite_statement.on_conflict_do_update(
            index_elements=[members.c.cluster, members.c.member], set_={"last_seen": later}
        )
    rows = [
        {"cluster": cluster, "member": member, "first_seen": first, "last_seen": last}
        for (cluster, member), (first, last) in sorted(seen.items())
    ]
    connection.execute(upsert, rows)


def is_stale_status(status: MemberStatus, stored: Row[Any]) -> bool:
    """Return whether ``status`` is stale compared with the ``stored`` row of ``member_status``.

    A status of an older connection is stale: it is typically the will of a connection that
    ended after the birth of a newer one. For the same connection, a stored offline status is
    final, so anything received after it is stale, while an offline after an online wins.
    """
    if status.connected_at != stored.connected_at:
        return bool(status.connected_at < stored.connected_at)
    return bool(stored.state == OFFLINE)


def stored_status(connection: Connection, cluster: str, member: str) -> Row[Any] | None:
    return connection.execute(
        select(member_status).where(member_condition(member_status, cluster, member))
    ).one_or_none()


def write_status(
    connection: Connection,
    status: MemberStatus,
    received_at: datetime,
    message_id: str,
    *,
    replace: bool,
) -> None:
    """Insert the member's status row, or update it when ``replace`` is set."""
    values = {
        "state": str(status.state),
        "connected_at": status.connected_at,
        "reason": str(status.reason) if status.reason is not None else None,
        "agent_version": status.agent_version,
        "status_received_at": received_at,
        "message_id": message_id,
    }
    if replace:
        connection.execute(
            update(member_status)
            .where(member_condition(member_status, status.cluster, status.member))
            .values(**values)
        )
    else:
        connection.execute(
            insert(member_status).values(cluster=status.cluster, member=status.member, **values)
        )


def register(connection: Connection, cluster: str, member: str, registered_at: datetime) -> bool:
    """Insert the registration of ``cluster/member``; return ``False`` if it was there."""
    if is_registered(connection, cluster, member):
        return False
    connection.execute(
        insert(registered_members).values(
            cluster=cluster, member=member, registered_at=registered_at
        )
    )
    return True


def is_registered(connection: Connection, cluster: str, member: str) -> bool:
    found: bool = connection.execute(
        select(exists().where(member_condition(registered_members, cluster, member)))
    ).scalar_one()
    return found


def has_registrations(connection: Connection, cluster: str) -> bool:
    found: bool = connection.execute(
        select(exists().where(registered_members.c.cluster == cluster))
    ).scalar_one()
    return found


def seen_unregistered(connection: Connection, cluster: str) -> list[str]:
    """Return the members of ``cluster`` whose messages were accepted without a registration.

    The list is empty once the cluster has a registration, because from then on ingest rejects
    unregistered members. Before that, these are the members that the cluster's first
    registration would cut off.
    """
    if has_registrations(connection, cluster):
        return []
    rows = connection.execute(
        select(members.c.member).where(members.c.cluster == cluster).order_by(members.c.member)
    )
    return list(rows.scalars())
