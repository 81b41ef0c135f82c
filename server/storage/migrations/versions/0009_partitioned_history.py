"""Partition the offer history by month on PostgreSQL, or make it a TimescaleDB hypertable.

A large cluster adds about 1,440 history rows per machine offer and day. Monthly partitions let
the retention sweep drop a month with one DROP TABLE instead of deleting millions of rows. When
the ``timescaledb`` extension is installed in the database before this migration runs, the
table becomes a hypertable with daily chunks and compression instead. SQLite keeps its plain
table. ``id`` becomes a 64-bit integer on PostgreSQL, because a 32-bit one runs out after about
two billion versions.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import Connection, text

from server.storage.partitions import (
    MONTHS_AHEAD,
    HistoryLayout,
    add_months,
    create_default_partition,
    create_partition,
    history_layout,
    month_start,
    partition_of,
    timescale_installed,
)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Months before the current one that get a partition of their own when rows of theirs exist.
# Rows older than that, or with a date far in the future, stay in the DEFAULT partition.
BACKFILL_MONTHS = 120
CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "7 days"

_COLUMNS = "id, cluster, member, resource, generated_at, received_at, payload, seq, message_id"


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    if timescale_installed(connection):
        _make_hypertable(connection)
    else:
        _partition_by_month(connection, datetime.now(UTC))


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    layout = history_layout(connection)
    if layout is HistoryLayout.PLAIN:
        return
    if layout is HistoryLayout.HYPERTABLE:
        connection.execute(
            text("SELECT remove_compression_policy('offer_history', if_exists => true)")
        )
    _replace_with_plain_table(connection)


def _partition_by_month(connection: Connection, now: datetime) -> None:
    # The old table keeps its rows until they are copied; its sequence moves to the new table.
    connection.execute(text("ALTER TABLE offer_history RENAME TO offer_history_plain"))
    connection.execute(
        text(
            "ALTER TABLE offer_history_plain "
            "RENAME CONSTRAINT offer_history_pkey TO offer_history_plain_pkey"
        )
    )
    connection.execute(
        text("ALTER INDEX ix_offer_history_resource RENAME TO ix_offer_history_plain")
    )
    connection.execute(text("ALTER SEQUENCE offer_history_id_seq OWNED BY NONE"))
    connection.execute(
        text(
            "CREATE TABLE offer_history (LIKE offer_history_plain INCLUDING DEFAULTS) "
            "PARTITION BY RANGE (generated_at)"
        )
    )
    connection.execute(text("ALTER TABLE offer_history ALTER COLUMN id TYPE bigint"))
    connection.execute(text("ALTER SEQUENCE offer_history_id_seq AS bigint"))
    connection.execute(text("ALTER SEQUENCE offer_history_id_seq OWNED BY offer_history.id"))
    connection.execute(text("ALTER TABLE offer_history ADD PRIMARY KEY (id, generated_at)"))

    create_default_partition(connection)
    for month in _months_to_create(connection, now):
        create_partition(connection, partition_of(month))

    connection.execute(
        text(f"INSERT INTO offer_history ({_COLUMNS}) SELECT {_COLUMNS} FROM offer_history_plain")
    )
    connection.execute(text("DROP TABLE offer_history_plain"))
    connection.execute(
        text(
            "CREATE INDEX ix_offer_history_resource "
            "ON offer_history (cluster, member, resource, generated_at)"
        )
    )
    connection.execute(text("ANALYZE offer_history"))


def _months_to_create(connection: Connection, now: datetime) -> list[datetime]:
    current = month_start(now)
    earliest = add_months(current, -BACKFILL_MONTHS)
    with_rows = connection.execute(
        text(
            "SELECT DISTINCT date_trunc('month', generated_at, 'UTC') FROM offer_history_plain "
            "WHERE generated_at >= :earliest AND generated_at < :current"
        ),
        {"earliest": earliest, "current": current},
    ).scalars()
    past = {month_start(month) for month in with_rows}
    ahead = {add_months(current, offset) for offset in range(MONTHS_AHEAD + 1)}
    return sorted(past | ahead)


def _make_hypertable(connection: Connection) -> None:
    # NOTE: untested here, because TimescaleDB is not installed on the development machine.
    # The calls follow the TimescaleDB 2.x documentation: create_hypertable with the pre-2.13
    # arguments (still accepted by later 2.x releases), ALTER TABLE ... SET (timescaledb.compress)
    # and add_compression_policy. Unique keys of a hypertable must contain the time column.
    connection.execute(text("ALTER TABLE offer_history DROP CONSTRAINT offer_history_pkey"))
    connection.execute(text("ALTER TABLE offer_history ALTER COLUMN id TYPE bigint"))
    connection.execute(text("ALTER SEQUENCE offer_history_id_seq AS bigint"))
    connection.execute(text("ALTER TABLE offer_history ADD PRIMARY KEY (id, generated_at)"))
    connection.execute(
        text(
            "SELECT create_hypertable('offer_history', 'generated_at', "
            f"chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}', migrate_data => true)"
        )
    )
    connection.execute(
        text(
            "ALTER TABLE offer_history SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'cluster, member, resource', "
            "timescaledb.compress_orderby = 'generated_at DESC, id DESC')"
        )
    )
    connection.execute(
        text(f"SELECT add_compression_policy('offer_history', INTERVAL '{COMPRESS_AFTER}')")
    )


def _replace_with_plain_table(connection: Connection) -> None:
    connection.execute(
        text("CREATE TABLE offer_history_plain (LIKE offer_history INCLUDING DEFAULTS)")
    )
    connection.execute(text("ALTER SEQUENCE offer_history_id_seq OWNED BY NONE"))
    connection.execute(
        text(f"INSERT INTO offer_history_plain ({_COLUMNS}) SELECT {_COLUMNS} FROM offer_history")
    )
    connection.execute(text("DROP TABLE offer_history CASCADE"))
    connection.execute(text("ALTER TABLE offer_history_plain RENAME TO offer_history"))
    connection.execute(text("ALTER TABLE offer_history ADD PRIMARY KEY (id)"))
    connection.execute(text("ALTER SEQUENCE offer_history_id_seq OWNED BY offer_history.id"))
    connection.execute(
        text(
            "CREATE INDEX ix_offer_history_resource "
            "ON offer_history (cluster, member, resource, generated_at)"
        )
    )
