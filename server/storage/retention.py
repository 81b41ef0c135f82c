"""Retention of the offer history and of the daily free hours derived from it.

Every version older than the retention period is deleted, the latest version of a current
offer included. The current offer has its own row in ``resources``, so the dashboard and the
API still show it, but its history page lists only the versions inside the period. A retention
period is a promise that older data is gone, and dropping whole partitions cannot keep single
rows cheaply.

``capacity_days`` is pruned to the same start as the history, so the coordinator's capacity
plot never shows a day whose versions the history no longer holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, text

from server.storage.partitions import (
    DEFAULT_PARTITION,
    HISTORY_TABLE,
    HistoryLayout,
    history_layout,
    list_partitions,
    month_start,
    partition_of,
)
from server.storage.tables import capacity_days, offer_history


@dataclass(frozen=True)
class PruneCounts:
    """Counts of one prune, and the start of the history that is kept."""

    kept_from: datetime
    dropped_partitions: tuple[str, ...]
    deleted_history_rows: int
    deleted_capacity_days: int


def prune_history(connection: Connection, cutoff: datetime) -> PruneCounts:
    """Delete the history generated before ``cutoff`` and the daily free hours derived from it.

    On a partitioned table whole monthly partitions go, so the month that contains ``cutoff``
    is kept whole when its partition exists. A hypertable drops the chunks that end before
    ``cutoff``. Elsewhere (SQLite, the DEFAULT partition) rows are deleted one by one.
    """
    layout = history_layout(connection)
    if layout is HistoryLayout.PARTITIONED:
        kept_from, dropped, deleted = _prune_partitioned(connection, cutoff)
    elif layout is HistoryLayout.HYPERTABLE:
        kept_from, dropped, deleted = _prune_hypertable(connection, cutoff)
    else:
        kept_from, dropped = cutoff, ()
        deleted = connection.execute(
            delete(offer_history).where(offer_history.c.generated_at < cutoff)
        ).rowcount

    capacity = connection.execute(
        delete(capacity_days).where(capacity_days.c.generated_at < kept_from)
    ).rowcount
    return PruneCounts(
        kept_from=kept_from,
        dropped_partitions=dropped,
        deleted_history_rows=deleted,
        deleted_capacity_days=capacity,
    )


def _prune_partitioned(
    connection: Connection, cutoff: datetime
) -> tuple[datetime, tuple[str, ...], int]:
    partitions = list_partitions(connection)
    boundary = partition_of(month_start(cutoff))
    kept_from = boundary.start if boundary in partitions else cutoff

    dropped = tuple(partition.name for partition in partitions if partition.end <= kept_from)
    for name in dropped:
        connection.execute(text(f"DROP TABLE {name}"))
    deleted = connection.execute(
        text(f"DELETE FROM {DEFAULT_PARTITION} WHERE generated_at < :kept_from"),
        {"kept_from": kept_from},
    ).rowcount
    return kept_from, dropped, deleted


def _prune_hypertable(
    connection: Connection, cutoff: datetime
) -> tuple[datetime, tuple[str, ...], int]:
    # NOTE: untested here, because TimescaleDB is not installed on the development machine.
    # drop_chunks (TimescaleDB 2.x) drops only chunks that end before the cutoff, so up to one
    # chunk interval of older versions stays in the history while capacity_days loses them.
    chunks = connection.execute(
        text(f"SELECT drop_chunks('{HISTORY_TABLE}', older_than => :cutoff)"),
        {"cutoff": cutoff},
    ).scalars()
    return cutoff, tuple(str(chunk) for chunk in chunks), 0
