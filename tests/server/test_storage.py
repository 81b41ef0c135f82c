"""Storage on SQLite and PostgreSQL: migrations, current offers, history and filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text

from kooperant.intervals import Interval
from server.errors import (
    DatabaseUnavailableError,
    InvalidSettingError,
    SchemaOutdatedError,
    StorageError,
)
from server.storage import (
    MAX_REJECTED_PAYLOAD_BYTES,
    OfferOutcome,
    ResourceQuery,
    Storage,
    mask_password,
    parse_database_url,
)
from server.storage.tables import resources
from server.storage.visibility import Viewer
from tests.server.helpers import HEAD_REVISION, T0, T1, hours, machine_offer, storage_offer

EXPECTED_TABLES = {
    "delivered_messages",
    "member_profiles",
    "resource_amounts",
    "server_secrets",
    "users",
    "web_sessions",
    "member_status",
    "members",
    "registered_members",
    "resources",
    "resource_capabilities",
    "free_intervals",
    "offer_history",
    "rejected_messages",
    "resource_audience",
    "withdrawals",
}


def test_migrate_creates_tables_from_empty(database_url: str) -> None:
    storage = Storage(database_url)
    try:
        assert storage.schema_revision() is None
        with pytest.raises(SchemaOutdatedError, match="kooperant server migrate"):
            storage.check_schema()

        storage.migrate()

        tables = set(inspect(storage.engine).get_table_names())
        assert tables >= EXPECTED_TABLES
        assert storage.schema_revision() == HEAD_REVISION
        storage.check_schema()
    finally:
        storage.close()


def test_migrate_twice_changes_nothing(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)

    storage.migrate()

    assert storage.list_resources(ResourceQuery()).total == 1


def test_store_offer_round_trip(storage: Storage) -> None:
    offer = machine_offer()
    received = T0 + timedelta(seconds=3)

    storage.store_offer(offer, received)
    page = storage.list_resources(ResourceQuery())

    assert page.total == 1
    record = page.items[0]
    assert (record.cluster, record.member, record.resource) == (
        "pomorskie-metal",
        "acme",
        "cnc-5ax-01",
    )
    assert record.kind == "machine"
    assert record.name == "DMU 50"
    assert record.capabilities == ("5-axis-milling", "turning")
    assert record.state == "NotExecuting"
    assert record.free_hours == pytest.approx(6.0)
    assert record.free_intervals == offer.free_intervals
    assert record.horizon == offer.horizon
    assert record.generated_at == T0
    assert record.received_at == received


def test_timestamps_come_back_in_utc(storage: Storage) -> None:
    warsaw = timezone(timedelta(hours=1))
    generated = datetime(2026, 12, 7, 8, 30, tzinfo=warsaw)

    storage.store_offer(machine_offer(generated_at=generated), generated)
    record = storage.list_resources(ResourceQuery()).items[0]

    assert record.generated_at == generated
    assert record.generated_at.utcoffset() == timedelta(0)
    assert record.generated_at.hour == 7


def test_older_offer_goes_to_history_only(storage: Storage) -> None:
    newer = machine_offer(generated_at=T0 + hours(1), name="newer")
    older = machine_offer(generated_at=T0, name="older", capabilities=("grinding",))

    storage.store_offer(newer, T0 + hours(1))
    storage.store_offer(older, T0 + hours(2))
    record = storage.list_resources(ResourceQuery()).items[0]

    assert record.name == "newer"
    assert record.capabilities == ("5-axis-milling", "turning")
    assert storage.count_history("pomorskie-metal", "acme", "cnc-5ax-01") == 2


def test_newer_offer_replaces_capabilities_and_intervals(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)
    later = T0 + hours(1)
    replacement = machine_offer(
        generated_at=later,
        capabilities=("grinding",),
        free=(Interval(later, later + hours(1)),),
    )

    storage.store_offer(replacement, later)
    record = storage.list_resources(ResourceQuery()).items[0]

    assert record.capabilities == ("grinding",)
    assert record.free_intervals == (Interval(later, later + hours(1)),)
    assert storage.list_resources(ResourceQuery(capabilities=("turning",))).total == 0


def test_members_count_resources_and_last_seen(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)
    storage.store_offer(storage_offer(), T0 + hours(2))
    storage.store_offer(machine_offer(member="beta"), T0 + hours(1))

    members = storage.list_members()

    assert [(item.member, item.resources) for item in members] == [("acme", 2), ("beta", 1)]
    assert members[0].first_seen == T0
    assert members[0].last_seen == T0 + hours(2)


def test_capability_filter_requires_all(storage: Storage) -> None:
    storage.store_offer(machine_offer(resource="both"), T0)
    storage.store_offer(machine_offer(resource="milling", capabilities=("5-axis-milling",)), T0)

    one = storage.list_resources(ResourceQuery(capabilities=("5-axis-milling",)))
    both = storage.list_resources(ResourceQuery(capabilities=("5-axis-milling", "turning")))
    none = storage.list_resources(ResourceQuery(capabilities=("welding",)))

    assert [item.resource for item in one.items] == ["both", "milling"]
    assert [item.resource for item in both.items] == ["both"]
    assert none.total == 0


def test_kind_and_member_filters(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)
    storage.store_offer(storage_offer(), T0)
    storage.store_offer(machine_offer(member="beta"), T0)

    machines = storage.list_resources(ResourceQuery(kinds=("machine",)))
    either = storage.list_resources(ResourceQuery(kinds=("machine", "storage")))
    supplies = storage.list_resources(ResourceQuery(kinds=("supplies",)))
    beta = storage.list_resources(ResourceQuery(member="beta"))

    assert machines.total == 2
    assert {item.kind for item in machines.items} == {"machine"}
    assert either.total == 3
    assert {item.kind for item in either.items} == {"machine", "storage"}
    assert supplies.total == 0
    assert [(item.member, item.resource) for item in beta.items] == [("beta", "cnc-5ax-01")]


def test_time_filter_clips_intervals_and_hours(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)  # free T0..T0+4h and T0+24h..T0+26h
    storage.store_offer(
        machine_offer(resource="late", free=(Interval(T0 + hours(30), T0 + hours(32)),)), T0
    )

    page = storage.list_resources(
        ResourceQuery(window_start=T0 + hours(3), window_end=T0 + hours(25))
    )

    assert [item.resource for item in page.items] == ["cnc-5ax-01"]
    record = page.items[0]
    assert record.free_intervals == (
        Interval(T0 + hours(3), T0 + hours(4)),
        Interval(T0 + hours(24), T0 + hours(25)),
    )
    assert record.free_hours == pytest.approx(2.0)


def test_time_filter_with_open_end(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)

    page = storage.list_resources(ResourceQuery(window_start=T0 + hours(25)))

    assert page.total == 1
    assert page.items[0].free_intervals == (Interval(T0 + hours(25), T0 + hours(26)),)
    assert page.items[0].free_hours == pytest.approx(1.0)


def test_time_filter_excludes_touching_interval(storage: Storage) -> None:
    storage.store_offer(machine_offer(free=(Interval(T0, T0 + hours(4)),)), T0)

    page = storage.list_resources(
        ResourceQuery(window_start=T0 + hours(4), window_end=T0 + hours(5))
    )

    assert page.total == 0


def test_non_machine_has_no_free_time(storage: Storage) -> None:
    storage.store_offer(storage_offer(), T0)

    record = storage.list_resources(ResourceQuery()).items[0]

    assert record.free_hours is None
    assert record.free_intervals == ()
    assert record.amounts == ({"quantity": "pallet_places", "value": 40.0, "unit": "pallets"},)


def test_limit_and_offset_page_in_order(storage: Storage) -> None:
    for index in range(5):
        storage.store_offer(machine_offer(resource=f"m{index}"), T0)

    page = storage.list_resources(ResourceQuery(limit=2, offset=2))

    assert page.total == 5
    assert [item.resource for item in page.items] == ["m2", "m3"]


def test_rejected_payload_is_cut_and_escaped(storage: Storage) -> None:
    payload = b"\xff\x00" + b"a" * (MAX_REJECTED_PAYLOAD_BYTES + 100)

    storage.store_rejected("kooperant/v1/x", payload, "payload is not UTF-8", T0)
    storage.store_rejected("kooperant/v1/y", b"{}", "later", T0 + hours(1))
    rejected = storage.list_rejected(limit=10)

    assert [item.topic for item in rejected] == ["kooperant/v1/y", "kooperant/v1/x"]
    stored = rejected[1].payload
    assert stored.startswith("\\xff\\x00aaa")
    assert len(stored) == MAX_REJECTED_PAYLOAD_BYTES - 2 + len("\\xff\\x00")
    assert rejected[1].reason == "payload is not UTF-8"


def test_naive_datetime_is_rejected(storage: Storage) -> None:
    with pytest.raises(StorageError, match="naive datetime"):
        storage.store_offer(storage_offer(), datetime(2026, 12, 7, 6, 0))


def test_sqlite_stores_sortable_utc_text(sqlite_storage: Storage) -> None:
    sqlite_storage.store_offer(machine_offer(), datetime(2026, 12, 7, 7, 0, tzinfo=UTC))

    with sqlite_storage.engine.connect() as connection:
        raw = connection.execute(text("SELECT received_at FROM resources")).scalar_one()

    assert raw == "2026-12-07T07:00:00.000000+00:00"


@pytest.mark.parametrize(
    ("url", "error", "shown"),
    [
        ("mysql://kooperant:secret@127.0.0.1/db", InvalidSettingError, "mysql://kooperant:***@"),
        ("sqlite://", InvalidSettingError, "sqlite://"),
        ("postgresql://kooperant:secret@127.0.0.1:5432", InvalidSettingError, "kooperant:***@"),
        ("not a url", InvalidSettingError, "cannot be parsed"),
    ],
)
def test_bad_database_url_is_named_masked(url: str, error: type[Exception], shown: str) -> None:
    with pytest.raises(error) as raised:
        Storage(url)

    assert shown in str(raised.value)
    assert "secret" not in str(raised.value)


def test_unreachable_postgres_names_masked_url(free_port: int) -> None:
    url = f"postgresql://kooperant:secret@127.0.0.1:{free_port}/kooperant"

    with pytest.raises(DatabaseUnavailableError) as raised:
        Storage(url)

    message = str(raised.value)
    assert f"postgresql://kooperant:***@127.0.0.1:{free_port}/kooperant" in message
    assert "secret" not in message


def test_sqlite_in_missing_folder_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/kooperant.db"

    with pytest.raises(DatabaseUnavailableError, match=r"missing/kooperant\.db"):
        Storage(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://postgres:S3cret@Pw42@127.0.0.1:5432/x",
            "postgresql://postgres:***@127.0.0.1:5432/x",
        ),
        (
            "postgresql://postgres:S3cret%40Pw42@127.0.0.1:5432/x",
            "postgresql://postgres:***@127.0.0.1:5432/x",
        ),
        ("postgresql://postgres:S3cret/Pw42@127.0.0.1/x", "postgresql://postgres:***@127.0.0.1/x"),
        ("postgresql://:S3cret@127.0.0.1/x", "postgresql://:***@127.0.0.1/x"),
        ("postgresql://postgres@127.0.0.1:5432/x", "postgresql://postgres@127.0.0.1:5432/x"),
        ("sqlite:////srv/a:b@c/kooperant.db", "sqlite:////srv/a:b@c/kooperant.db"),
        ("mqtt://user:S3cret@Pw42@127.0.0.1", "mqtt://user:***@127.0.0.1"),
        ("not a url", "(unparsable URL)"),
    ],
)
def test_mask_password_hides_whole_password(url: str, shown: str) -> None:
    assert mask_password(url) == shown


def test_unencoded_at_in_password_is_rejected() -> None:
    url = "postgresql://postgres:S3cret@Pw42@127.0.0.1:5432/x"

    with pytest.raises(InvalidSettingError) as raised:
        parse_database_url(url)

    message = str(raised.value)
    assert "postgresql://postgres:***@127.0.0.1:5432/x" in message
    assert "%40" in message
    assert "S3cret" not in message
    assert "Pw42" not in message


def test_encoded_at_in_password_is_accepted() -> None:
    parsed = parse_database_url("postgresql://postgres:S3cret%40Pw42@127.0.0.1:5432/x")

    assert parsed.password == "S3cret@Pw42"
    assert parsed.host == "127.0.0.1"


@pytest.mark.postgres
def test_missing_postgres_database_hints_createdb(postgres_url: str) -> None:
    name = f"kooperant_missing_{uuid.uuid4().hex[:12]}"
    url = f"{postgres_url.rsplit('/', 1)[0]}/{name}"

    with pytest.raises(DatabaseUnavailableError) as raised:
        Storage(url)

    message = str(raised.value)
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres {name}" in message
    assert f"CREATE DATABASE {name}" in message
    assert "writable" not in message


def test_refused_postgres_hints_host_and_port(free_port: int) -> None:
    with pytest.raises(DatabaseUnavailableError) as raised:
        Storage(f"postgresql://kooperant@127.0.0.1:{free_port}/kooperant")

    message = str(raised.value)
    assert f"listens on 127.0.0.1:{free_port}" in message
    assert "writable" not in message
    assert "createdb" not in message


def test_sqlite_in_missing_folder_hints_folder(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailableError) as raised:
        Storage(f"sqlite:///{tmp_path}/missing/kooperant.db")

    message = str(raised.value)
    assert "folder exists and is writable" in message
    assert "PostgreSQL" not in message


def test_migration_0002_keeps_existing_offers(database_url: str) -> None:
    storage = Storage(database_url)
    try:
        storage.migrate("0001")
        with storage.engine.begin() as connection:
            connection.execute(
                insert(resources).values(
                    cluster="c",
                    member="acme",
                    resource="old",
                    kind="machine",
                    generated_at=T0,
                    received_at=T0,
                    payload="{}",
                )
            )

        storage.migrate()
        page = storage.list_resources(ResourceQuery(), now=T0)

        assert storage.schema_revision() == HEAD_REVISION
        assert [item.resource for item in page.items] == ["old"]
        assert page.items[0].expires_at is None
        assert page.items[0].free_hours_band is None
    finally:
        storage.close()


def test_migration_0003_keeps_offers_and_history(database_url: str) -> None:
    storage = Storage(database_url)
    try:
        storage.migrate("0002")
        with storage.engine.begin() as connection:
            for name, generated_at in (("old", T0), ("withdrawn", T0)):
                connection.execute(
                    text(
                        "INSERT INTO offer_history "
                        "(cluster, member, resource, generated_at, received_at, payload) "
                        "VALUES ('pomorskie-metal', 'acme', :name, :at, :at, '{}')"
                    ).bindparams(name=name, at=_raw_time(storage, generated_at))
                )
            connection.execute(
                text(
                    "INSERT INTO resources "
                    "(cluster, member, resource, kind, generated_at, received_at, payload) "
                    "VALUES ('pomorskie-metal', 'acme', 'old', 'machine', :at, :at, '{}')"
                ).bindparams(at=_raw_time(storage, T0))
            )
            connection.execute(
                text(
                    "INSERT INTO withdrawals (cluster, member, resource, withdrawn_at, reason, "
                    "delete_history, received_at) VALUES "
                    "('pomorskie-metal', 'acme', 'withdrawn', :at, 'withdrawn', false, :at)"
                ).bindparams(at=_raw_time(storage, T1))
            )

        storage.migrate()
        storage.check_schema()
        page = storage.list_resources(ResourceQuery(), now=T0)
        older_than_withdrawal = storage.store_offer(
            machine_offer(resource="withdrawn", generated_at=T0), T1
        )
        newer = storage.store_offer(machine_offer(resource="old", generated_at=T1), T1)

        assert storage.schema_revision() == HEAD_REVISION
        assert [item.resource for item in page.items] == ["old"]
        assert storage.count_history("pomorskie-metal", "acme", "old") == 2
        assert older_than_withdrawal is OfferOutcome.WITHDRAWN
        assert newer is OfferOutcome.CURRENT
        with storage.engine.connect() as connection:
            seqs = connection.execute(text("SELECT seq FROM offer_history")).scalars().all()
        assert seqs == [None, None, None]
    finally:
        storage.close()


def _raw_time(storage: Storage, moment: datetime) -> object:
    # Raw SQL bypasses the column type, so the value is written as the type would store it.
    if storage.engine.dialect.name == "sqlite":
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    return moment


def test_postgres_connections_turn_jit_off(postgres_url: str) -> None:
    storage = Storage(postgres_url)
    try:
        with storage.engine.connect() as connection:
            jit = connection.execute(text("SHOW jit")).scalar_one()
    finally:
        storage.close()

    assert jit == "off"


def test_postgres_url_options_are_kept(postgres_url: str) -> None:
    storage = Storage(f"{postgres_url}?options=-c%20statement_timeout%3D4321")
    try:
        with storage.engine.connect() as connection:
            timeout = connection.execute(text("SHOW statement_timeout")).scalar_one()
            jit = connection.execute(text("SHOW jit")).scalar_one()
    finally:
        storage.close()

    assert timeout == "4321ms"
    assert jit == "off"


def test_migration_0005_marks_offers_with_an_audience(database_url: str) -> None:
    storage = Storage(database_url)
    try:
        storage.migrate("0004")
        with storage.engine.begin() as connection:
            for name in ("shared", "private"):
                connection.execute(
                    text(
                        "INSERT INTO resources "
                        "(cluster, member, resource, kind, generated_at, received_at, payload) "
                        "VALUES ('pomorskie-metal', 'acme', :name, 'machine', :at, :at, '{}')"
                    ).bindparams(name=name, at=_raw_time(storage, T0))
                )
            connection.execute(
                text(
                    "INSERT INTO resource_audience (cluster, member, resource, viewer) "
                    "VALUES ('pomorskie-metal', 'acme', 'private', 'beta')"
                )
            )

        storage.migrate()
        seen_by = {
            viewer: [
                item.resource
                for item in storage.list_resources(
                    ResourceQuery(), viewer=Viewer("pomorskie-metal", viewer), now=T0
                ).items
            ]
            for viewer in ("beta", "gamma")
        }

        assert storage.schema_revision() == HEAD_REVISION
        assert seen_by == {"beta": ["private", "shared"], "gamma": ["shared"]}
    finally:
        storage.close()
