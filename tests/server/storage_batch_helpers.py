"""Offers, storages and table contents shared by the batch store tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Table, select

from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, Envelope, MachineState, Offer, ResourceKind
from server.storage import Storage
from server.storage.tables import (
    capacity_days,
    delivered_messages,
    free_intervals,
    members,
    offer_history,
    resource_amounts,
    resource_audience,
    resource_capabilities,
    resources,
    withdrawals,
)
from tests.conftest import POSTGRES_ADMIN_DSN
from tests.server.helpers import T0, hours

# Every table the offer path writes, with the columns whose values the comparison ignores: the
# ids of free intervals differ, because the batch inserts only the last current offer's rows.
OFFER_TABLES: tuple[tuple[Table, frozenset[str]], ...] = (
    (resources, frozenset()),
    (resource_capabilities, frozenset()),
    (free_intervals, frozenset({"id"})),
    (resource_audience, frozenset()),
    (resource_amounts, frozenset()),
    (offer_history, frozenset({"id"})),
    (capacity_days, frozenset()),
    (delivered_messages, frozenset()),
    (members, frozenset()),
    (withdrawals, frozenset()),
)


def variant_offer(
    cluster: str,
    member: str,
    resource: str,
    *,
    generated_at: datetime,
    variant: int,
    seq: int | None,
    message_id: str,
) -> Offer:
    """Return one of four offer shapes, with an envelope when ``seq`` is set.

    The shapes differ in free hours (exact, band, none), capabilities, audience, free intervals
    and amounts, so a wrong current offer or capacity row shows in the table contents.
    """
    envelope = Envelope(message_id, seq) if seq is not None else None
    horizon = Interval(generated_at, generated_at + hours(48))
    if variant == 0:
        free = (Interval(generated_at, generated_at + hours(3)),)
        return Offer(
            cluster=cluster,
            member=member,
            resource=resource,
            kind=ResourceKind.MACHINE,
            generated_at=generated_at,
            name="DMU 50",
            capabilities=("milling", "turning"),
            state=MachineState.EXECUTING,
            state_since=generated_at - hours(1),
            horizon=horizon,
            free_hours=3.0,
            free_intervals=free,
            envelope=envelope,
        )
    if variant == 1:
        free = (
            Interval(generated_at + hours(1), generated_at + hours(2)),
            Interval(generated_at + hours(5), generated_at + hours(9)),
        )
        return Offer(
            cluster=cluster,
            member=member,
            resource=resource,
            kind=ResourceKind.MACHINE,
            generated_at=generated_at,
            capabilities=("laser-cutting",),
            horizon=horizon,
            free_hours=5.0,
            free_intervals=free,
            audience=("gamma", "delta"),
            accepts_requests=True,
            envelope=envelope,
        )
    if variant == 2:
        return Offer(
            cluster=cluster,
            member=member,
            resource=resource,
            kind=ResourceKind.MACHINE,
            generated_at=generated_at,
            capabilities=("welding",),
            horizon=horizon,
            free_hours_band=Band(0, 20),
            expires_at=generated_at + hours(30),
            envelope=envelope,
        )
    return Offer(
        cluster=cluster,
        member=member,
        resource=resource,
        kind=ResourceKind.STORAGE,
        generated_at=generated_at,
        name="Hala B",
        capabilities=("cold-storage",),
        amounts=(
            Amount("pallet_places", 40.0, "pallets", label="B"),
            Amount("area", None, "m2", band=Band(100, None)),
        ),
        envelope=envelope,
    )


def table_contents(storage: Storage, cluster: str) -> dict[str, list[dict[str, Any]]]:
    """Return the rows of ``cluster`` in every table of ``OFFER_TABLES``, ignored columns left out.

    History rows are in insertion order, the others sorted.
    """
    contents: dict[str, list[dict[str, Any]]] = {}
    with storage.engine.connect() as connection:
        for table, ignored in OFFER_TABLES:
            columns = [column for column in table.c if column.name not in ignored]
            statement = select(*columns).where(table.c.cluster == cluster)
            if table is offer_history:
                statement = statement.order_by(offer_history.c.id)
            rows = [dict(row._mapping) for row in connection.execute(statement)]
            if table is not offer_history:
                rows.sort(key=repr)
            contents[table.name] = rows
    return contents


@contextmanager
def extra_postgres_database() -> Iterator[str]:
    """Create one more empty PostgreSQL database for a test and drop it after."""
    name = f"kooperant_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def at(step: int) -> datetime:
    """Return ``T0`` plus ``step`` times 7 hours, so that a few steps span several days."""
    return T0 + timedelta(hours=7 * step)
