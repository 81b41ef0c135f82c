"""Queries and offers shared by the tests of history partitions and retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from kooperant.intervals import Interval
from kooperant.protocol import Offer
from server.storage import Storage
from tests.server.helpers import hours, machine_offer

OWNER = ("pomorskie-metal", "acme")


def offer_at(generated_at: datetime, resource: str = "cnc-5ax-01") -> Offer:
    """Return a machine offer generated at ``generated_at`` with 4 free hours from then."""
    free = (Interval(generated_at, generated_at + hours(4)),)
    return replace(
        machine_offer(resource=resource, generated_at=generated_at, free=free),
        horizon=Interval(generated_at, generated_at + hours(14 * 24)),
        free_hours=4.0,
    )


def downgrade(storage: Storage, revision: str) -> None:
    """Downgrade the schema of ``storage`` to ``revision`` with Alembic."""
    config = Config()
    config.set_main_option("script_location", str(files("server.storage").joinpath("migrations")))
    with storage.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def relkind(storage: Storage, table: str) -> str | None:
    """Return ``pg_class.relkind`` of ``table``: ``p`` for partitioned, ``r`` for plain."""
    with storage.engine.connect() as connection:
        value: str | None = connection.execute(
            text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table}
        ).scalar()
    return value


def partition_names(storage: Storage) -> list[str]:
    """Return the names of the partitions of ``offer_history`` that pg_inherits lists."""
    with storage.engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT child.relname FROM pg_inherits "
                    "JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid "
                    "WHERE pg_inherits.inhparent = 'offer_history'::regclass ORDER BY 1"
                )
            ).scalars()
        )


def rows_per_partition(storage: Storage) -> dict[str, int]:
    """Return how many history rows each partition holds."""
    with storage.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT tableoid::regclass::text AS partition, count(*) AS rows "
                "FROM offer_history GROUP BY 1"
            )
        ).all()
    return {row.partition: row.rows for row in rows}


def history_times(storage: Storage) -> list[datetime]:
    """Return the ``generated_at`` of every history row, oldest first."""
    with storage.engine.connect() as connection:
        values = connection.execute(
            text("SELECT generated_at FROM offer_history ORDER BY generated_at")
        ).scalars()
        return [_as_datetime(value) for value in values]


def capacity_days_count(storage: Storage) -> int:
    with storage.engine.connect() as connection:
        count: int = connection.execute(text("SELECT count(*) FROM capacity_days")).scalar_one()
    return count


def _as_datetime(value: object) -> datetime:
    # SQLite returns the stored text; PostgreSQL a datetime.
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value
