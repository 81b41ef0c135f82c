"""The layout of ``offer_history`` on PostgreSQL, and its monthly range partitions.

Migration 0009 makes ``offer_history`` on PostgreSQL a table partitioned by range of
``generated_at``, with one partition per calendar month in UTC named ``offer_history_pYYYYMM``.
The DEFAULT partition ``offer_history_default`` takes rows outside every monthly partition,
because the protocol checks only the format of a date and an agent's clock may be years off.
When the ``timescaledb`` extension is installed in the database, the migration makes it a
hypertable instead, and TimescaleDB creates its chunks by itself. SQLite keeps a plain table.

The partitioned table's primary key is ``(id, generated_at)``, because PostgreSQL requires the
keys of a partitioned table to contain the partition column. ``id`` still comes from one
sequence, so it stays unique on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Connection, text

HISTORY_TABLE = "offer_history"
DEFAULT_PARTITION = "offer_history_default"
PARTITION_PREFIX = "offer_history_p"
# Monthly partitions made ahead of the current month, by the migration and by the sweep.
MONTHS_AHEAD = 3

_PARTITION_NAME = re.compile(rf"{PARTITION_PREFIX}(\d{{4}})(\d{{2}})")


class HistoryLayout(StrEnum):
    """Storage layout of ``offer_history``."""

    PLAIN = "plain"
    PARTITIONED = "partitioned"
    HYPERTABLE = "hypertable"


@dataclass(frozen=True)
class Partition:
    """A monthly partition of ``offer_history``: rows with ``start <= generated_at < end``."""

    name: str
    start: datetime
    end: datetime


def timescale_installed(connection: Connection) -> bool:
    """Return whether the ``timescaledb`` extension is installed in the connected database."""
    if connection.dialect.name != "postgresql":
        return False
    query = text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return connection.execute(query).first() is not None


def history_layout(connection: Connection) -> HistoryLayout:
    """Return how ``offer_history`` is stored in the connected database."""
    if connection.dialect.name != "postgresql":
        return HistoryLayout.PLAIN
    relkind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"),
        {"table": HISTORY_TABLE},
    ).scalar()
    if relkind == "p":
        return HistoryLayout.PARTITIONED
    if timescale_installed(connection):
        hypertable = connection.execute(
            text(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = :table"
            ),
            {"table": HISTORY_TABLE},
        ).first()
        if hypertable is not None:
            return HistoryLayout.HYPERTABLE
    return HistoryLayout.PLAIN


def month_start(moment: datetime) -> datetime:
    """Return the first instant of the UTC calendar month of ``moment``."""
    in_utc = moment.astimezone(UTC)
    return datetime(in_utc.year, in_utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """Return the first instant of the month ``count`` months after the month ``month`` starts."""
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_of(month: datetime) -> Partition:
    """Return the monthly partition that contains ``month``'s rows, whether it exists or not."""
    start = month_start(month)
    name = f"{PARTITION_PREFIX}{start:%Y%m}"
    return Partition(name=name, start=start, end=add_months(start, 1))


def list_partitions(connection: Connection) -> list[Partition]:
    """Return the monthly partitions of ``offer_history``, oldest first.

    The DEFAULT partition and tables attached by hand under other names are left out.
    """
    names = connection.execute(
        text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = to_regclass(:table)"
        ),
        {"table": HISTORY_TABLE},
    ).scalars()
    partitions = []
    for name in names:
        match = _PARTITION_NAME.fullmatch(name)
        if match is not None:
            month = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
            partitions.append(partition_of(month))
    return sorted(partitions, key=lambda partition: partition.start)


def create_default_partition(connection: Connection) -> None:
    """Create the DEFAULT partition of ``offer_history`` unless it exists."""
    # CREATE TABLE IF NOT EXISTS would lock offer_history against ingest even when the
    # partition exists, so the catalogue is asked first.
    exists = connection.execute(
        text("SELECT to_regclass(:name) IS NOT NULL"), {"name": DEFAULT_PARTITION}
    ).scalar_one()
    if not exists:
        connection.execute(
            text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {HISTORY_TABLE} DEFAULT")
        )


def create_partition(connection: Connection, partition: Partition) -> int:
    """Create ``partition`` and move its rows out of the DEFAULT partition; return how many moved.

    PostgreSQL rejects a new partition while the DEFAULT partition contains rows of its range, so
    those rows leave the DEFAULT partition first and are inserted again once the partition
    exists. Run it inside a transaction, so that a failure leaves both as they were.
    """
    bounds = {"start": partition.start, "end": partition.end}
    # CREATE TABLE ... PARTITION OF takes this lock anyway. Taking it before the DELETE keeps
    # ingest from adding a row of the range to the DEFAULT partition in between.
    connection.execute(text(f"LOCK TABLE {HISTORY_TABLE} IN ACCESS EXCLUSIVE MODE"))
    connection.execute(
        text(
            "CREATE TEMPORARY TABLE offer_history_moving "
            f"(LIKE {HISTORY_TABLE} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
    )
    moved = connection.execute(
        text(
            "WITH moved AS ("
            f"DELETE FROM {DEFAULT_PARTITION} "
            "WHERE generated_at >= :start AND generated_at < :end RETURNING *) "
            "INSERT INTO offer_history_moving SELECT * FROM moved"
        ),
        bounds,
    ).rowcount
    connection.execute(
        text(
            f"CREATE TABLE {partition.name} PARTITION OF {HISTORY_TABLE} "
            f"FOR VALUES FROM ('{_literal(partition.start)}') TO ('{_literal(partition.end)}')"
        )
    )
    connection.execute(text(f"INSERT INTO {HISTORY_TABLE} SELECT * FROM offer_history_moving"))
    connection.execute(text("DROP TABLE offer_history_moving"))
    return moved


def ensure_partitions(
    connection: Connection, now: datetime, months_ahead: int = MONTHS_AHEAD
) -> list[Partition]:
    """Create the partitions of ``now``'s month and ``months_ahead`` more that are missing.

    Returns the partitions created. Creating none costs one catalogue query.
    """
    existing = {partition.name for partition in list_partitions(connection)}
    create_default_partition(connection)
    created = []
    first = month_start(now)
    for offset in range(months_ahead + 1):
        partition = partition_of(add_months(first, offset))
        if partition.name not in existing:
            create_partition(connection, partition)
            created.append(partition)
    return created


def _literal(moment: datetime) -> str:
    # Partition bounds are DDL, which takes no bind parameters. The text comes from a datetime,
    # so it contains digits, dashes, colons and a plus sign only.
    return moment.astimezone(UTC).isoformat(sep=" ")
