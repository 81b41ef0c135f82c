"""Writes of the current offers: replace one, remove one, record withdrawals.

Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, select, update

from kooperant.protocol import Offer, Withdrawal
from server.storage.amounts import amount_rows
from server.storage.bulk import insert_rows, match_triples
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


@dataclass(frozen=True, slots=True)
class CurrentOffer:
    """An offer to make current, with the values its ``resources`` row keeps besides it."""

    offer: Offer
    received_at: datetime
    payload: str
    message_id: str


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

    connection.execute(
        insert(resources).values(current_row(offer, received_at, payload, message_id))
    )
    rows = current_detail_rows(offer)
    for table in CURRENT_OFFER_TABLES[1:]:
        if rows[table.name]:
            connection.execute(insert(table), rows[table.name])


def replace_currents(connection: Connection, winners: Sequence[CurrentOffer]) -> None:
    """Make each of ``winners`` the current offer of its resource, in a few statements.

    The resources of ``winners`` must differ. The rows are those ``replace_current`` writes for
    each, apart from the ids of ``free_intervals``.
    """
    if not winners:
        return
    keys = [(item.offer.cluster, item.offer.member, item.offer.resource) for item in winners]
    for table in CURRENT_OFFER_TABLES:
        columns = (table.c.cluster, table.c.member, table.c.resource)
        connection.execute(
            delete(table).where(*match_triples(connection, columns, keys, name="replaced"))
        )

    rows: dict[str, list[dict[str, Any]]] = {table.name: [] for table in CURRENT_OFFER_TABLES}
    for item in winners:
        rows[resources.name].append(
            current_row(item.offer, item.received_at, item.payload, item.message_id)
        )
        for name, detail_rows in current_detail_rows(item.offer).items():
            rows[name].extend(detail_rows)
    for table in CURRENT_OFFER_TABLES:
        table_rows = rows[table.name]
        if table_rows:
            names = list(table_rows[0])
            insert_rows(
                connection,
                table,
                names,
                [tuple(row[name] for name in names) for row in table_rows],
            )


def current_row(
    offer: Offer, received_at: datetime, payload: str, message_id: str
) -> dict[str, Any]:
    """Return the ``resources`` row of ``offer`` as the current offer of its resource."""
    band = offer.free_hours_band
    return {
        "cluster": offer.cluster,
        "member": offer.member,
        "resource": offer.resource,
        "kind": str(offer.kind),
        "name": offer.name,
        "state": str(offer.state) if offer.state is not None else None,
        "state_since": offer.state_since,
        "free_hours": offer.free_hours,
        "free_hours_min": band.min if band is not None else None,
        "free_hours_max": band.max if band is not None else None,
        "horizon_start": offer.horizon.start if offer.horizon else None,
        "horizon_end": offer.horizon.end if offer.horizon else None,
        "expires_at": offer.expires_at,
        "generated_at": offer.generated_at,
        "received_at": received_at,
        "payload": payload,
        "seq": offer.envelope.seq if offer.envelope is not None else None,
        "message_id": message_id,
        "restricted": bool(offer.audience),
        "accepts_requests": offer.accepts_requests,
    }


def current_detail_rows(offer: Offer) -> dict[str, list[dict[str, Any]]]:
    """Return the capability, audience, free interval and amount rows of ``offer`` by table name.

    Each row of one table has the same columns, in the same order.
    """
    key = (offer.cluster, offer.member, offer.resource)
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
    return {
        resource_capabilities.name: _value_rows(key, "capability", offer.capabilities),
        resource_audience.name: _value_rows(key, "viewer", offer.audience),
        free_intervals.name: interval_rows,
        resource_amounts.name: amount_rows(
            key, [amount.to_json() for amount in offer.amounts or ()]
        ),
    }


def _value_rows(
    key: ResourceKey, column: str, values: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    return [
        {"cluster": key[0], "member": key[1], "resource": key[2], column: value}
        for value in sorted(set(values or ()))
    ]


def current_stamp(connection: Connection, key: ResourceKey) -> Stamp | None:
    """Return the sequence number and ``generated_at`` of the current offer of ``key``."""
    row = connection.execute(
        select(resources.c.seq, resources.c.generated_at).where(*key_condition(resources, key))
    ).one_or_none()
    return Stamp(row.seq, row.generated_at) if row is not None else None


def current_stamps(
    connection: Connection, keys: Collection[ResourceKey]
) -> dict[ResourceKey, Stamp]:
    """Return ``current_stamp`` of each of ``keys`` that has a current offer, in one query."""
    return _stamps_of(connection, resources, resources.c.generated_at, keys)


def latest_withdrawals(
    connection: Connection, keys: Collection[ResourceKey]
) -> dict[ResourceKey, Stamp]:
    """Return ``latest_withdrawal`` of each of ``keys`` that has one, in one query."""
    return _stamps_of(connection, withdrawals, withdrawals.c.withdrawn_at, keys)


def _stamps_of(
    connection: Connection, table: Any, time: Any, keys: Collection[ResourceKey]
) -> dict[ResourceKey, Stamp]:
    if not keys:
        return {}
    columns = (table.c.cluster, table.c.member, table.c.resource)
    rows = connection.execute(
        select(*columns, table.c.seq, time.label("time")).where(
            *match_triples(connection, columns, keys, name="stamped")
        )
    )
    return {(row.cluster, row.member, row.resource): Stamp(row.seq, row.time) for row in rows}


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
