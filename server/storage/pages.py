"""Paged reads of members and rejected messages, each with the total of its unpaged list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select

from server.storage.queries import members_statement, rejected_statement
from server.storage.records import MemberRecord, RejectedRecord
from server.storage.visibility import Viewer


@dataclass(frozen=True, slots=True)
class MemberPage:
    """One page of ``MemberRecord`` and the number of members the viewer may see."""

    items: tuple[MemberRecord, ...]
    total: int


@dataclass(frozen=True, slots=True)
class RejectedPage:
    """One page of ``RejectedRecord`` and the number of rejected messages the viewer may see."""

    items: tuple[RejectedRecord, ...]
    total: int


def member_page(
    connection: Connection, viewer: Viewer, now: datetime, limit: int, offset: int
) -> MemberPage:
    """Read the members ``viewer`` may see at ``now``, ordered by cluster and member."""
    statement = members_statement(viewer, now)
    total = _count(connection, statement)
    rows = connection.execute(statement.limit(limit).offset(offset)).all()
    return MemberPage(items=tuple(_member_record(row) for row in rows), total=total)


def rejected_page(connection: Connection, viewer: Viewer, limit: int, offset: int) -> RejectedPage:
    """Read the rejected messages ``viewer`` may see, newest first."""
    statement = rejected_statement(limit, viewer).offset(offset)
    total = _count(connection, statement.limit(None).offset(None))
    rows = connection.execute(statement).all()
    return RejectedPage(items=tuple(_rejected_record(row) for row in rows), total=total)


def _count(connection: Connection, statement: Select[Any]) -> int:
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total: int = connection.execute(counted).scalar_one()
    return total


def _member_record(row: Row[Any]) -> MemberRecord:
    return MemberRecord(
        cluster=row.cluster,
        member=row.member,
        resources=row.resources,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        status=row.status,
        status_since=row.status_since,
        registered=bool(row.registered),
    )


def _rejected_record(row: Row[Any]) -> RejectedRecord:
    return RejectedRecord(
        id=row.id,
        received_at=row.received_at,
        topic=row.topic,
        reason=row.reason,
        payload=row.payload,
    )
