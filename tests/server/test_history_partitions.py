"""Monthly partitions of offer_history on PostgreSQL: migration 0009, ingest, upkeep.

The hypertable path needs TimescaleDB, which its test skips when the server lacks it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from server.storage import Storage
from server.storage.history_maintenance import MAINTENANCE_LOCK
from server.storage.partitions import (
    DEFAULT_PARTITION,
    MONTHS_AHEAD,
    HistoryLayout,
    add_months,
    create_partition,
    history_layout,
    month_start,
    partition_of,
    timescale_installed,
)
from server.storage.records import ResourceQuery
from server.storage.visibility import Viewer
from tests.server.helpers import HEAD_REVISION, T0, hours
from tests.server.history_helpers import (
    OWNER,
    downgrade,
    history_times,
    offer_at,
    partition_names,
    relkind,
    rows_per_partition,
)

pytestmark = pytest.mark.postgres

OLD_MONTH = datetime(2026, 9, 14, 8, 0, tzinfo=UTC)
FAR_PAST = datetime(1990, 1, 1, 0, 0, tzinfo=UTC)
FAR_FUTURE = datetime(2250, 6, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def postgres_storage(postgres_url: str) -> Iterator[Storage]:
    opened = Storage(postgres_url)
    yield opened
    opened.close()


def _insert_history(storage: Storage, *moments: datetime) -> None:
    with storage.engine.begin() as connection:
        for moment in moments:
            connection.execute(
                text(
                    "INSERT INTO offer_history "
                    "(cluster, member, resource, generated_at, received_at, payload) "
                    "VALUES ('pomorskie-metal', 'acme', 'cnc-5ax-01', :at, :at, '{}')"
                ),
                {"at": moment},
            )


def _primary_key(storage: Storage) -> list[str]:
    with storage.engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT attribute.attname FROM pg_index AS ix "
                    "JOIN pg_attribute AS attribute ON attribute.attrelid = ix.indrelid "
                    "AND attribute.attnum = ANY(ix.indkey) "
                    "WHERE ix.indrelid = 'offer_history'::regclass AND ix.indisprimary "
                    "ORDER BY array_position(ix.indkey::int2[], attribute.attnum)"
                )
            ).scalars()
        )


def test_migration_partitions_existing_history(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate("0008")
    _insert_history(storage, OLD_MONTH, T0, FAR_PAST, FAR_FUTURE)

    storage.migrate()

    now_month = month_start(datetime.now(UTC))
    expected_ahead = {
        partition_of(add_months(now_month, offset)).name for offset in range(MONTHS_AHEAD + 1)
    }
    names = partition_names(storage)
    assert storage.schema_revision() == HEAD_REVISION
    assert relkind(storage, "offer_history") == "p"
    assert "offer_history_p202609" in names
    assert expected_ahead <= set(names)
    assert DEFAULT_PARTITION in names
    assert history_times(storage) == [FAR_PAST, OLD_MONTH, T0, FAR_FUTURE]
    assert rows_per_partition(storage)["offer_history_p202609"] == 1
    assert rows_per_partition(storage)[DEFAULT_PARTITION] == 2
    assert _primary_key(storage) == ["id", "generated_at"]


def test_migration_keeps_index_and_sequence(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate("0008")
    _insert_history(storage, OLD_MONTH, OLD_MONTH + hours(1))

    storage.migrate()
    storage.store_offer(offer_at(T0), T0)

    with storage.engine.connect() as connection:
        ids = connection.execute(text("SELECT id FROM offer_history ORDER BY id")).scalars().all()
        index = connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_offer_history_resource'")
        ).scalar_one()
        id_type = connection.execute(
            text(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'offer_history' AND column_name = 'id'"
            )
        ).scalar_one()
    assert ids == [1, 2, 3]
    assert "(cluster, member, resource, generated_at)" in index
    assert id_type == "bigint"


def test_migration_without_timescale_partitions(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()

    with storage.engine.connect() as connection:
        installed = timescale_installed(connection)
        layout = history_layout(connection)

    assert installed is False
    assert layout is HistoryLayout.PARTITIONED


def test_downgrade_restores_plain_table(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()
    storage.maintain_history(T0, 0)
    storage.store_offer(offer_at(T0), T0)
    storage.store_offer(offer_at(T0 + timedelta(days=40)), T0 + timedelta(days=40))

    downgrade(storage, "0008")

    assert storage.schema_revision() == "0008"
    assert relkind(storage, "offer_history") == "r"
    assert partition_names(storage) == []
    assert _primary_key(storage) == ["id"]
    assert history_times(storage) == [T0, T0 + timedelta(days=40)]
    storage.migrate()
    assert relkind(storage, "offer_history") == "p"
    assert history_times(storage) == [T0, T0 + timedelta(days=40)]


def test_ingest_lands_in_month_partition(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()
    storage.maintain_history(T0, 0)
    january = T0 + timedelta(days=40)

    storage.store_offer(offer_at(T0), T0)
    storage.store_offer(offer_at(T0 + hours(1)), T0 + hours(1))
    storage.store_offer(offer_at(january), january)

    page = storage.list_history(*OWNER, "cnc-5ax-01", viewer=Viewer(*OWNER), now=january)
    capacity = storage.cluster_capacity(viewer=Viewer(*OWNER), now=january, days=60)
    assert rows_per_partition(storage) == {"offer_history_p202612": 2, "offer_history_p202701": 1}
    assert page is not None
    assert page.total == 3
    assert [item.generated_at for item in page.items] == [january, T0 + hours(1), T0]
    assert [(point.day.isoformat(), point.free_hours) for point in capacity] == [
        ("2026-12-07", 4.0),
        ("2027-01-16", 4.0),
    ]


def test_partition_created_with_rows_in_default(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()
    june_2030 = datetime(2030, 6, 10, 12, 0, tzinfo=UTC)
    storage.store_offer(offer_at(june_2030), june_2030)
    storage.store_offer(offer_at(june_2030 + timedelta(days=30)), june_2030 + timedelta(days=30))
    assert rows_per_partition(storage) == {DEFAULT_PARTITION: 2}

    result = storage.maintain_history(datetime(2030, 5, 15, tzinfo=UTC), 0)

    assert result is not None
    assert [partition.name for partition in result.created] == [
        "offer_history_p203005",
        "offer_history_p203006",
        "offer_history_p203007",
        "offer_history_p203008",
    ]
    assert rows_per_partition(storage) == {"offer_history_p203006": 1, "offer_history_p203007": 1}
    page = storage.list_history(*OWNER, "cnc-5ax-01", viewer=Viewer(*OWNER), now=june_2030)
    assert page is not None
    assert page.total == 2


def test_partition_creation_waits_for_ingest(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()
    # The row is in the first month that maintenance creates, so its DELETE from the DEFAULT
    # partition runs while the insert is still uncommitted unless the table is locked first.
    may_2030 = datetime(2030, 5, 20, 12, 0, tzinfo=UTC)

    with storage.engine.connect() as ingest, ThreadPoolExecutor(1) as pool:
        transaction = ingest.begin()
        ingest.execute(
            text(
                "INSERT INTO offer_history "
                "(cluster, member, resource, generated_at, received_at, payload) "
                "VALUES ('pomorskie-metal', 'acme', 'cnc-5ax-01', :at, :at, '{}')"
            ),
            {"at": may_2030},
        )
        maintenance = pool.submit(storage.maintain_history, datetime(2030, 5, 15, tzinfo=UTC), 0)
        time.sleep(0.5)
        waited = not maintenance.done()
        transaction.commit()
        result = maintenance.result(timeout=10)

    assert waited
    assert result is not None
    assert rows_per_partition(storage) == {"offer_history_p203005": 1}


def test_maintenance_again_creates_nothing(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()
    storage.maintain_history(T0, 0)

    again = storage.maintain_history(T0 + hours(1), 0)

    assert again is not None
    assert again.created == ()


def test_maintenance_skips_while_locked(postgres_storage: Storage, postgres_url: str) -> None:
    storage = postgres_storage
    storage.migrate()
    far_month = datetime(2031, 3, 1, tzinfo=UTC)

    with psycopg.connect(postgres_url) as other:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (MAINTENANCE_LOCK,))
        skipped = storage.maintain_history(far_month, 0)
        other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (MAINTENANCE_LOCK,))
    done = storage.maintain_history(far_month, 0)

    assert skipped is None
    assert done is not None
    assert done.created[0].name == "offer_history_p203103"


def test_retention_drops_whole_partitions(postgres_storage: Storage) -> None:
    storage = postgres_storage
    storage.migrate()
    october, november = datetime(2025, 10, 15, tzinfo=UTC), datetime(2025, 11, 20, tzinfo=UTC)
    december = datetime(2025, 12, 3, tzinfo=UTC)
    for moment in (datetime(2024, 1, 1, tzinfo=UTC), october, november, december, T0):
        storage.store_offer(offer_at(moment), moment)
    with storage.engine.begin() as connection:
        for month in (october, november, december):
            create_partition(connection, partition_of(month))

    result = storage.maintain_history(T0, 365)

    assert result is not None
    assert result.prune is not None
    assert result.prune.kept_from == datetime(2025, 12, 1, tzinfo=UTC)
    assert result.prune.dropped_partitions == ("offer_history_p202510", "offer_history_p202511")
    assert result.prune.deleted_history_rows == 1
    assert result.prune.deleted_capacity_days == 3
    assert history_times(storage) == [december, T0]
    assert "offer_history_p202510" not in partition_names(storage)
    page = storage.list_history(*OWNER, "cnc-5ax-01", viewer=Viewer(*OWNER), now=T0)
    assert page is not None
    assert page.total == 2
    assert storage.list_resources(ResourceQuery(), now=T0).total == 1


def test_timescale_hypertable_migration(postgres_storage: Storage) -> None:
    storage = postgres_storage
    with storage.engine.connect() as connection:
        available = connection.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        ).first()
    if available is None:
        pytest.skip(
            "TimescaleDB is not installed on the PostgreSQL server at 127.0.0.1:5432, so the "
            "hypertable path of migration 0009 cannot run"
        )
    storage.migrate("0008")
    _insert_history(storage, OLD_MONTH, T0)
    with storage.engine.begin() as connection:
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))

    storage.migrate()
    storage.store_offer(offer_at(T0 + hours(1)), T0 + hours(1))
    result = storage.maintain_history(T0, 30)

    with storage.engine.connect() as connection:
        layout = history_layout(connection)
    assert layout is HistoryLayout.HYPERTABLE
    assert result is not None
    assert result.prune is not None
    assert result.prune.dropped_partitions != ()
    assert history_times(storage) == [T0, T0 + hours(1)]
