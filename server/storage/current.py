"""Writes of the current offers: replace one, remove one, record withdrawals.

Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, select, update

from kooperant.protocol import Offer, Withdrawal
from server.storage.amounts import insert_amounts
from server.storage.delivery import Stamp
from server.storage.tables import (
    free_intervals,
    resource_amounts,
    resource_audience,
    resource_capabilities,
    resources,
    withdrawals,
)

ResourceKey = tuple[str, str, str]

# The tables that together hold the current offer of a resource.
CURRENT_OFFER_TABLES = (
    resources,
    resource_capabilities,
    free_intervals,
    resource_audience,
    resource_amounts,
)


def key_condition(table: Any, key: ResourceKey) -> list[ColumnElement[bool]]:
    cluster, member, resource = key
    return [table.c.cluster == cluster, table.c.member == member, table.c.resource == resource]


def remove_current(connection: Connection, key: ResourceKey) -> bool:
    """Delete the current offer of ``key``; return whether there was one."""
    removed = connection.execute(delete(resources).where(*key_condition(resources, key)))
    for table in CURRENT_OFFER_TABLES[1:]:
        connection.execute(delete(table).where(*key_condition(table, key)))
    return removed.rowcount > 0


def replace_current(
    connection: Connection, offer: Offer, received_at: datetime, payload: str, message_id: str
) -> None:
    key = (offer.cluster, offer.member, offer.resource)
    remove_current(connection, key)

    band = offer.free_hours_band
    connection.execute(
        insert(resources).values(
            cluster=offer.cluster,
            member=offer.member,
            resource=offer.resource,
            kind=str(offer.kind),
            name=offer.name,
            state=str(offer.state) if offer.state is not None else None,
            state_since=offer.state_since,
            free_hours=offer.free_hours,
            free_hours_min=band.min if band is not None else None,
            free_hours_max=band.max if band is not None else None,
            horizon_start=offer.horizon.start if offer.horizon else None,
            horizon_end=offer.horizon.end if offer.horizon else None,
            expires_at=offer.expires_at,
            generated_at=offer.generated_at,
            received_at=received_at,
            payload=payload,
            seq=offer.envelope.seq if offer.envelope is not None else None,
            message_id=message_id,
            restricted=bool(offer.audience),
            accepts_requests=offer.accepts_requests,
        )
    )
    _insert_rows(connection, resource_capabilities, key, "capability", offer.capabilities)
    _insert_rows(connection, resource_audience, key, "viewer", offer.audience)
    interval_rows = [
        {
            "cluster": key[0],
            "member": key[1],
            "resource": key[2],
            "start": interval.start,
            "end": interval.end,
        }
        for interval in offer.free_intervals or ()
    ]
    if interval_rows:
        connection.execute(insert(free_intervals), interval_rows)
    insert_amounts(connection, key, [amount.to_json() for amount in offer.amounts or ()])


def _insert_rows(
    connection: Connection,
    table: Any,
    key: ResourceKey,
    column: str,
    values: tuple[str, ...] | None,
) -> None:
    rows = [
        {"cluster": key[0], "member": key[1], "resource": key[2], column: value}
        for value in sorted(set(values or ()))
    ]
    if rows:
        connection.execute(insert(table), rows)


def current_stamp(connection: Connection, key: ResourceKey) -> Stamp | None:
    """Return the sequence number and ``generated_at`` of the current offer of ``key``."""
    row = connection.execute(
        select(resources.c.seq, resources.c.generated_at).where(*key_condition(resources, key))
    ).one_or_none()
    return Stamp(row.seq, row.generated_at) if row is not None else None


def latest_withdrawal(connection: Connection, key: ResourceKey) -> Stamp | None:
    """Return the sequence number and ``withdrawn_at`` of the latest withdrawal of ``key``."""
    row = connection.execute(
        select(withdrawals.c.seq, withdrawals.c.withdrawn_at).where(
            *key_condition(withdrawals, key)
        )
    ).one_or_none()
    return Stamp(row.seq, row.withdrawn_at) if row is not None else None


def record_withdrawal(
    connection: Connection,
    withdrawal: Withdrawal,
    received_at: datetime,
    message_id: str,
    *,
    replace: bool,
) -> None:
    """Keep ``withdrawal`` as the latest of its resource; ``replace`` updates the recorded one."""
    key = (withdrawal.cluster, withdrawal.member, withdrawal.resource)
    values = {
        "withdrawn_at": withdrawal.withdrawn_at,
        "reason": str(withdrawal.reason),
        "delete_history": withdrawal.delete_history,
        "received_at": received_at,
        "seq": withdrawal.envelope.seq if withdrawal.envelope is not None else None,
        "message_id": message_id,
    }
    if replace:
        connection.execute(
            update(withdrawals).where(*key_condition(withdrawals, key)).values(**values)
        )
    else:
        connection.execute(
            insert(withdrawals).values(cluster=key[0], member=key[1], resource=key[2], **values)
        )
