"""Message ids already stored per member, and the order of two messages about one resource.

Each function runs inside the caller's transaction, which holds the member's write lock, so a
check followed by an insert cannot race with another writer of the same member.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Delete, and_, delete, exists, insert, select

from server.storage.bulk import match_triples
from server.storage.tables import delivered_messages, member_status, resources, withdrawals

# A delivered message: cluster, member and message id.
MessageRef = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Stamp:
    """The place of a message in its member's history: ``seq`` (``None`` without envelope) and time.

    The time is ``generated_at`` of an offer and ``withdrawn_at`` of a withdrawal.
    """

    seq: int | None
    time: datetime


def precedes(incoming: Stamp, stored: Stamp, *, on_equal_time: bool) -> bool:
    """Return whether ``incoming`` is older than ``stored``.

    Two messages that both carry a sequence number are ordered by it, because the agent's
    sequence is strictly increasing per member even when its clock steps back. Otherwise their
    times decide, and ``on_equal_time`` is returned for two equal times.
    """
    if incoming.seq is not None and stored.seq is not None:
        return incoming.seq < stored.seq
    if incoming.time == stored.time:
        return on_equal_time
    return incoming.time < stored.time


def claim_message(
    connection: Connection,
    cluster: str,
    member: str,
    message_id: str,
    *,
    seq: int | None,
    kind: str,
    received_at: datetime,
) -> bool:
    """Record ``message_id`` as delivered by ``cluster/member``; return ``False`` if it was."""
    if is_delivered(connection, cluster, member, message_id):
        return False

    connection.execute(
        insert(delivered_messages).values(
            cluster=cluster,
            member=member,
            message_id=message_id,
            seq=seq,
            kind=kind,
            received_at=received_at,
        )
    )
    return True


def is_delivered(connection: Connection, cluster: str, member: str, message_id: str) -> bool:
    """Return whether ``cluster/member`` delivered ``message_id`` before."""
    delivered: bool = connection.execute(
        select(
            exists().where(
                delivered_messages.c.cluster == cluster,
                delivered_messages.c.member == member,
                delivered_messages.c.message_id == message_id,
            )
        )
    ).scalar_one()
    return delivered


def delivered_among(connection: Connection, messages: Collection[MessageRef]) -> set[MessageRef]:
    """Return those of ``messages`` that their members delivered before."""
    if not messages:
        return set()
    table = delivered_messages
    columns = (table.c.cluster, table.c.member, table.c.message_id)
    rows = connection.execute(
        select(*columns).where(*match_triples(connection, columns, messages, name="messages"))
    )
    return {(row.cluster, row.member, row.message_id) for row in rows}


def prune_statement(before: datetime) -> Delete:
    """Return the DELETE of delivered ids received before ``before`` that no current row names.

    The ids of current offers, recorded withdrawals and member statuses stay, because the broker
    sends those retained messages again after every reconnect and they must stay duplicates.
    """
    same_member_message = {
        table.name: and_(
            table.c.cluster == delivered_messages.c.cluster,
            table.c.member == delivered_messages.c.member,
            table.c.message_id == delivered_messages.c.message_id,
        )
        for table in (resources, withdrawals, member_status)
    }
    return delete(delivered_messages).where(
        delivered_messages.c.received_at < before,
        ~exists().where(same_member_message["resources"]),
        ~exists().where(same_member_message["withdrawals"]),
        ~exists().where(same_member_message["member_status"]),
    )
