"""The audit log: storage, recording by a running agent, and ``kooperant agent audit``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
from typer.testing import CliRunner

from agent.audit import SCHEMA_VERSION, AuditLog
from agent.cli import app
from agent.config import load_config
from agent.errors import AuditLogError
from agent.outbox import Outbox
from agent.runner import Agent
from kooperant.protocol import offer_topic, withdrawal_topic

# Monday 2026-03-02 10:00 in Warsaw, inside the default 06:00-14:00 shift.
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
MILL_TOPIC = offer_topic("pomorskie-metal", "acme", "cnc-1")
LASER_TOPIC = offer_topic("pomorskie-metal", "acme", "laser-2")
RENAMED_MILL_TOPIC = offer_topic("pomorskie-metal", "acme", "frezarka-5osi")


def write_config(folder: Path, broker_url: str, cluster: str = "pomorskie-metal") -> Path:
    (folder / "policy.yaml").write_text(
        "share:\n  - resource: cnc-1\n    fields: [name, free_hours]\n", encoding="utf-8"
    )
    path = folder / "agent.yaml"
    path.write_text(
        f"member: acme\ncluster: {cluster}\nbroker:\n  url: {broker_url}\n"
        f"  client_id: {cluster}-agent\n"
        # No session is kept after the test, because the machine's broker is shared.
        "  session_expiry_seconds: 0\n"
        "policy: policy.yaml\naudit_log: logs/audit.db\n"
        # Off, so a status port taken by another program cannot add an error record.
        "status:\n  enabled: false\n"
        "resources:\n  cnc-1: {name: DMU 50, kind: machine}\n",
        encoding="utf-8",
    )
    (folder / "logs").mkdir(exist_ok=True)
    return path


def fill_log(path: Path) -> None:
    with AuditLog(path) as log:
        log.record(MILL_TOPIC, '{"name":"DMU 50 frezarka żółta"}'.encode(), NOW)
        log.record(LASER_TOPIC, b'{"name":"TruLaser"}', NOW + timedelta(minutes=1))
        log.record(MILL_TOPIC, b'{"name":"DMU 50"}', NOW + timedelta(minutes=2))


def invoke(*arguments: str, language: str = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["audit", *arguments], env={"KOOPERANT_LANG": language})
    return result.exit_code, result.stdout, result.stderr


# AuditLog


def test_record_stores_hash_resource_and_utc_time(tmp_path: Path) -> None:
    payload = '{"name":"Frezarka żółta"}'.encode()
    warsaw_time = NOW.astimezone(ZoneInfo("Europe/Warsaw"))

    with AuditLog(tmp_path / "audit.db") as log:
        record = log.record(MILL_TOPIC, payload, warsaw_time)
        stored = log.query()

    assert stored == [record]
    assert record.resource == "cnc-1"
    assert record.kind == "offer"
    assert record.published_at == NOW
    assert record.published_at.utcoffset() == timedelta(0)
    assert record.payload_bytes == payload
    assert record.sha256 == hashlib.sha256(payload).hexdigest()


def test_query_filters_newest_first(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)

    with AuditLog(path) as log:
        everything = log.query()
        mill = log.query(resources={"cnc-1"})
        both = log.query(resources={"cnc-1", "laser-2"})
        none = log.query(resources=set())
        window = log.query(since=NOW + timedelta(minutes=1), until=NOW + timedelta(minutes=2))
        newest = log.query(limit=1)

    assert [record.published_at for record in everything] == [
        NOW + timedelta(minutes=2),
        NOW + timedelta(minutes=1),
        NOW,
    ]
    assert [record.payload for record in mill] == [
        '{"name":"DMU 50"}',
        '{"name":"DMU 50 frezarka żółta"}',
    ]
    assert [record.id for record in both] == [3, 2, 1]
    assert none == []
    assert [record.topic for record in window] == [LASER_TOPIC]
    assert [record.id for record in newest] == [3]


def test_query_rejects_naive_time_and_zero_limit(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        with pytest.raises(ValueError, match="since must have a time zone"):
            log.query(since=datetime(2026, 3, 2))
        with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
            log.query(limit=0)


def test_record_rejects_non_offer_topic(tmp_path: Path) -> None:
    expected = "not an offer, withdrawal or answer topic"
    with AuditLog(tmp_path / "audit.db") as log, pytest.raises(ValueError, match=expected):
        log.record("kooperant/v1/x", b"{}", NOW)


def test_record_withdrawal_and_clear(tmp_path: Path) -> None:
    withdrawal = withdrawal_topic("pomorskie-metal", "acme", "cnc-1")

    with AuditLog(tmp_path / "audit.db") as log:
        cleared = log.record(MILL_TOPIC, b"", NOW)
        withdrawn = log.record(withdrawal, b'{"reason":"withdrawn"}', NOW)

    assert (cleared.kind, cleared.resource, cleared.payload) == ("offer", "cnc-1", "")
    assert cleared.sha256 == hashlib.sha256(b"").hexdigest()
    assert (withdrawn.kind, withdrawn.resource) == ("withdrawal", "cnc-1")


def test_live_offer_topics_skip_cleared(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)
    other_member = offer_topic("pomorskie-metal", "beta", "cnc-1")
    other_cluster = offer_topic("pomorskie-metal-2", "acme", "cnc-1")

    with AuditLog(path) as log:
        log.record(other_member, b'{"name":"x"}', NOW)
        log.record(other_cluster, b'{"name":"x"}', NOW)
        before = log.live_offer_topics("pomorskie-metal", "acme")
        log.record(LASER_TOPIC, b"", NOW + timedelta(minutes=5))
        after = log.live_offer_topics("pomorskie-metal", "acme")
        offers = log.live_offers("pomorskie-metal", "acme")

    assert before == {MILL_TOPIC, LASER_TOPIC}
    assert after == {MILL_TOPIC}
    assert offers == {MILL_TOPIC: b'{"name":"DMU 50"}'}


def test_live_offer_topics_follow_row_order(tmp_path: Path) -> None:
    # An offer recorded after a clear is live again, even with an earlier clock reading.
    with AuditLog(tmp_path / "audit.db") as log:
        log.record(MILL_TOPIC, b"", NOW)
        log.record(MILL_TOPIC, b'{"name":"DMU 50"}', NOW - timedelta(hours=1))
        live = log.live_offer_topics("pomorskie-metal", "acme")

    assert live == {MILL_TOPIC}


def test_live_withdrawals_keep_latest_payload(tmp_path: Path) -> None:
    mill = withdrawal_topic("pomorskie-metal", "acme", "cnc-1")
    laser = withdrawal_topic("pomorskie-metal", "acme", "laser-2")

    with AuditLog(tmp_path / "audit.db") as log:
        log.record(mill, b'{"reason":"not_shared"}', NOW)
        log.record(mill, b'{"reason":"withdrawn"}', NOW)
        log.record(laser, b'{"reason":"expired"}', NOW)
        log.record(laser, b"", NOW)
        live = log.live_withdrawals("pomorskie-metal", "acme")
        offers = log.live_offer_topics("pomorskie-metal", "acme")

    assert live == {mill: b'{"reason":"withdrawn"}'}
    assert offers == set()


def test_known_resources_of_member(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)

    with AuditLog(path) as log:
        log.record(withdrawal_topic("pomorskie-metal", "acme", "old-press"), b"", NOW)
        log.record(offer_topic("pomorskie-metal", "beta", "other"), b"{}", NOW)
        known = log.known_resources("pomorskie-metal", "acme")

    assert known == {"cnc-1", "laser-2", "old-press"}


def test_open_version_1_file_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    connection = sqlite3.connect(path)
    connection.executescript(
        "CREATE TABLE audit_messages (id INTEGER PRIMARY KEY, published_at TEXT NOT NULL,"
        " topic TEXT NOT NULL, resource TEXT NOT NULL, kind TEXT NOT NULL,"
        " payload TEXT NOT NULL, sha256 TEXT NOT NULL);"
        "INSERT INTO audit_messages VALUES (1, '2026-03-02T09:00:00.000000+00:00',"
        f" '{MILL_TOPIC}', 'cnc-1', 'offer', '{{}}', 'x');"
        "PRAGMA user_version = 1;"
    )
    connection.close()

    with AuditLog(path) as log:
        live = log.live_offer_topics("pomorskie-metal", "acme")
    connection = sqlite3.connect(path)
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()

    assert live == {MILL_TOPIC}
    assert version == SCHEMA_VERSION
    assert {"withdrawals", "audit_messages_topic"} <= tables


def test_reopen_keeps_rows_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)

    with AuditLog(path) as log:
        count = log.count()
    connection = sqlite3.connect(path)
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()

    assert count == 3
    assert version == SCHEMA_VERSION
    assert journal_mode == "wal"


def test_open_newer_schema_raises(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()

    with pytest.raises(
        AuditLogError, match=f"schema version {SCHEMA_VERSION + 1} is newer"
    ) as info:
        AuditLog(path)
    assert info.value.path == path


def test_open_corrupt_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"not a database at all " * 300)

    with pytest.raises(AuditLogError) as info:
        AuditLog(path)

    assert str(info.value).startswith(f"audit log {path}: cannot open the file")
    assert "file is not a database" in str(info.value)


def test_open_unwritable_path_names_path(tmp_path: Path) -> None:
    # A path in a missing folder is used in place of an unwritable file, because the tests may
    # run as root, and file permissions do not stop root.
    path = tmp_path / "missing-folder" / "audit.db"

    with pytest.raises(AuditLogError) as info:
        AuditLog(path)

    assert str(info.value).startswith(f"audit log {path}: cannot open the file")


def test_mismatched_finds_edited_payload(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)
    edit_payload(path, row_id=2, payload='{"name":"Other"}')

    with AuditLog(path) as log:
        mismatched = list(log.mismatched())

    assert [record.id for record in mismatched] == [2]


def test_mismatched_finds_blob_payload(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)
    store_payload_as_blob(path, row_id=2)

    with AuditLog(path) as log:
        mismatched = list(log.mismatched())
        listed = log.query(resources={"laser-2"})

    assert [record.id for record in mismatched] == [2]
    assert mismatched[0].not_text == {"payload": "BLOB"}
    assert listed[0].payload == '{"name":"TruLaser"}'


def test_live_offers_reads_blob_payload(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)
    store_payload_as_blob(path, row_id=3)

    with AuditLog(path) as log:
        live = log.live_offers("pomorskie-metal", "acme")

    assert live == {MILL_TOPIC: b'{"name":"DMU 50"}', LASER_TOPIC: b'{"name":"TruLaser"}'}


def test_query_invalid_time_names_row(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    fill_log(path)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE audit_messages SET published_at = 'yesterday' WHERE id = 2")
    connection.close()

    with AuditLog(path) as log, pytest.raises(AuditLogError) as info:
        log.query()

    assert "row 2: published_at 'yesterday' is not an ISO 8601 time" in str(info.value)


def store_payload_as_blob(path: Path, row_id: int) -> None:
    """Change the row's payload to a BLOB of the same bytes, as an edit outside kooperant may."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "UPDATE audit_messages SET payload = CAST(payload AS BLOB) WHERE id = ?", (row_id,)
        )
    connection.close()


def edit_payload(path: Path, row_id: int, payload: str) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE audit_messages SET payload = ? WHERE id = ?", (payload, row_id))
    connection.close()


# Recording by the agent


@pytest.fixture
async def subscriber(mosquitto_url: str, cluster_id: str) -> AsyncIterator[aiomqtt.Client]:
    """A client subscribed to the test's offer topic; clears the retained offer after."""
    topic = offer_topic(cluster_id, "acme", "cnc-1")
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-sub") as client:
        await client.subscribe(topic, qos=1)
        yield client
        await client.publish(topic, b"", qos=1, retain=True)


async def next_payload(client: aiomqtt.Client) -> bytes:
    async with asyncio.timeout(5):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            if message.payload:
                return message.payload
    raise AssertionError("subscription ended")


@pytest.mark.mosquitto
async def test_agent_records_hash_of_received_bytes(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, subscriber: aiomqtt.Client
) -> None:
    config = load_config(write_config(tmp_path, mosquitto_url, cluster_id), {})
    runner = Agent(config, clock=lambda: NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        received = await next_payload(subscriber)
    finally:
        stop.set()
        await task

    with AuditLog(tmp_path / "logs" / "audit.db") as log:
        records = log.query()
    assert len(records) == 1
    assert records[0].topic == offer_topic(cluster_id, "acme", "cnc-1")
    assert records[0].payload_bytes == received
    assert records[0].sha256 == hashlib.sha256(received).hexdigest()
    assert records[0].published_at == NOW
    assert runner.publisher.file_failures == 0


@pytest.mark.mosquitto
async def test_agent_keeps_row_when_audit_fails(
    tmp_path: Path,
    mosquitto_url: str,
    cluster_id: str,
    subscriber: aiomqtt.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_config(write_config(tmp_path, mosquitto_url, cluster_id), {})
    runner = Agent(config, clock=lambda: NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await next_payload(subscriber)
        # Dropping the table from another connection makes the agent's next record fail.
        connection = sqlite3.connect(config.audit_log_path)
        connection.execute("DROP TABLE audit_messages")
        connection.close()

        runner.publisher.update(runner.current_offers(), full=True)
        second = await next_payload(subscriber)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task

    with Outbox(config.audit_log_path) as outbox:
        queued = outbox.queued()
    # The offer was acknowledged but not recorded, so it stays queued to be sent again.
    assert [message.payload for message in queued] == [second]
    assert runner.publisher.published_messages == 2
    assert runner.publisher.file_failures >= 1
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert "Cannot record the delivered message on" in errors[0].getMessage()
    assert hashlib.sha256(second).hexdigest() in errors[0].getMessage()


async def test_agent_run_with_corrupt_log_raises(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1883"), {})
    config.audit_log_path.write_bytes(b"damaged " * 1000)
    runner = Agent(config)

    with pytest.raises(AuditLogError, match="cannot open the file"):
        await runner.run(asyncio.Event())
    assert runner.publisher.published_messages == 0


async def test_agent_run_creates_log_folder(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"), {})
    folder = tmp_path / "state" / "agent"
    config = config.model_copy(update={"audit_log": folder / "audit.db"})
    stop = asyncio.Event()
    stop.set()

    await Agent(config).run(stop)

    assert (folder / "audit.db").is_file()


async def test_agent_run_folder_below_file_raises(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1"), {})
    (tmp_path / "plain-file").write_text("not a folder")
    path = tmp_path / "plain-file" / "state" / "audit.db"
    config = config.model_copy(update={"audit_log": path})

    with pytest.raises(AuditLogError) as info:
        await Agent(config).run(asyncio.Event())

    assert str(info.value).startswith(f"audit log {path}: cannot create the folder")
    assert "set audit_log to another path" in str(info.value)


def test_agent_opens_log_only_in_run(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "mqtt://127.0.0.1:1883"), {})

    Agent(config)

    assert not config.audit_log_path.exists()


def test_default_audit_log_next_to_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    text = path.read_text(encoding="utf-8").replace("audit_log: logs/audit.db\n", "")
    path.write_text(text, encoding="utf-8")

    config = load_config(path, {})

    assert config.audit_log_path == tmp_path / "kooperant-audit.db"


# kooperant agent audit


def test_cli_prints_table_in_config_zone(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    fill_log(tmp_path / "logs" / "audit.db")

    exit_code, stdout, _ = invoke("--config", str(config), "--resource", "cnc-1")

    lines = stdout.splitlines()
    newest = hashlib.sha256(b'{"name":"DMU 50"}').hexdigest()[:12]
    assert exit_code == 0
    assert lines[0] == "Resource cnc-1: searched the ids cnc-1."
    assert lines[1].split() == ["time", "(Europe/Warsaw)", "topic", "sha256", "bytes"]
    assert lines[2].split() == ["2026-03-02", "10:02:00", MILL_TOPIC, newest, "17"]
    assert lines[3].split()[:2] == ["2026-03-02", "10:00:00"]
    assert len(lines) == 4


def rename_mill(config: Path) -> None:
    """Publish cnc-1 as frezarka-5osi and record one offer under each id."""
    (config.parent / "policy.yaml").write_text(
        "share:\n  - resource: cnc-1\n    publish_as: frezarka-5osi\n    fields: [name]\n",
        encoding="utf-8",
    )
    with AuditLog(config.parent / "logs" / "audit.db") as log:
        log.record(MILL_TOPIC, b'{"name":"DMU 50"}', NOW)
        log.record(RENAMED_MILL_TOPIC, b'{"name":"Frezarka"}', NOW + timedelta(minutes=1))
        log.record(LASER_TOPIC, b'{"name":"TruLaser"}', NOW + timedelta(minutes=2))


@pytest.mark.parametrize(
    ("language", "note"),
    [
        ("en", "Resource cnc-1: searched the ids cnc-1, frezarka-5osi."),
        ("pl", "Zasób cnc-1: przeszukane identyfikatory cnc-1, frezarka-5osi."),
    ],
)
def test_cli_internal_id_finds_public_id(tmp_path: Path, language: str, note: str) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    rename_mill(config)

    exit_code, stdout, _ = invoke("--config", str(config), "--resource", "cnc-1", language=language)

    lines = stdout.splitlines()
    assert exit_code == 0
    assert lines[0] == note
    assert [line.split()[2] for line in lines[2:]] == [RENAMED_MILL_TOPIC, MILL_TOPIC]


def test_cli_public_id_finds_internal_id(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    rename_mill(config)

    exit_code, stdout, _ = invoke("--config", str(config), "--resource", "frezarka-5osi")

    lines = stdout.splitlines()
    assert exit_code == 0
    assert lines[0] == "Resource frezarka-5osi: searched the ids cnc-1, frezarka-5osi."
    assert [line.split()[2] for line in lines[2:]] == [RENAMED_MILL_TOPIC, MILL_TOPIC]


def test_cli_resource_json_note_on_stderr(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    rename_mill(config)

    exit_code, stdout, stderr = invoke("--config", str(config), "--resource", "cnc-1", "--json")

    objects = [json.loads(line) for line in stdout.splitlines()]
    assert exit_code == 0
    assert [item["resource"] for item in objects] == ["frezarka-5osi", "cnc-1"]
    assert stderr.strip() == "Resource cnc-1: searched the ids cnc-1, frezarka-5osi."


def test_cli_unknown_resource_matches_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    fill_log(tmp_path / "logs" / "audit.db")

    exit_code, stdout, _ = invoke("--config", str(config), "--resource", "press-9")

    assert exit_code == 0
    assert stdout.splitlines() == [
        "Resource press-9: searched the ids press-9.",
        "No messages match.",
    ]


def test_cli_json_lines_with_full_payload(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    fill_log(tmp_path / "logs" / "audit.db")

    # --since has no offset, so it is Warsaw time: 09:00 UTC.
    exit_code, stdout, _ = invoke(
        "--config",
        str(config),
        "--json",
        "--since",
        "2026-03-02T10:00",
        "--until",
        "2026-03-02T09:01:30+00:00",
    )
    objects = [json.loads(line) for line in stdout.splitlines()]
    assert exit_code == 0
    assert [item["topic"] for item in objects] == [LASER_TOPIC, MILL_TOPIC]
    mill = objects[1]
    assert mill["payload"] == '{"name":"DMU 50 frezarka żółta"}'
    assert mill["sha256"] == hashlib.sha256(mill["payload"].encode()).hexdigest()
    assert mill["published_at"] == "2026-03-02T09:00:00+00:00"
    assert mill["resource"] == "cnc-1"
    assert mill["kind"] == "offer"


def test_cli_limit_keeps_newest(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    fill_log(tmp_path / "logs" / "audit.db")

    exit_code, stdout, _ = invoke("--config", str(config), "--json", "--limit", "1")

    assert exit_code == 0
    assert [json.loads(line)["id"] for line in stdout.splitlines()] == [3]


def test_cli_verify_reports_edited_payload(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    path = tmp_path / "logs" / "audit.db"
    fill_log(path)

    exit_code, stdout, _ = invoke("--config", str(config), "--verify")
    assert exit_code == 0
    assert stdout.strip() == "All 3 messages match their SHA-256 hashes."

    edit_payload(path, row_id=1, payload='{"name":"DMU 60"}')
    exit_code, stdout, stderr = invoke("--config", str(config), "--verify")

    assert exit_code == 1
    assert stdout.startswith(f"Message 1 of 2026-03-02 10:00:00 on {MILL_TOPIC}")
    assert len(stdout.splitlines()) == 1
    assert "1 of 3 messages were changed or damaged" in stderr


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "Message 2 of 2026-03-02 10:01:00 on {topic}: stored as other than text (payload: "
            "BLOB), but the agent writes only text, so the payload does not match its stored "
            "SHA-256.",
        ),
        (
            "pl",
            "Wiadomość 2 z 2026-03-02 10:01:00 na {topic}: zapisana nie jako tekst (payload: "
            "BLOB), a agent zapisuje tylko tekst, więc treść nie zgadza się z zapisaną sumą "
            "SHA-256.",
        ),
    ],
)
def test_cli_verify_reports_blob_payload(tmp_path: Path, language: str, expected: str) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    path = tmp_path / "logs" / "audit.db"
    fill_log(path)
    store_payload_as_blob(path, row_id=2)

    exit_code, stdout, stderr = invoke("--config", str(config), "--verify", language=language)

    assert exit_code == 1
    assert stdout.splitlines() == [expected.format(topic=LASER_TOPIC)]
    assert stderr.startswith("1 ")


def test_cli_lists_blob_payload(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    path = tmp_path / "logs" / "audit.db"
    fill_log(path)
    store_payload_as_blob(path, row_id=2)

    exit_code, stdout, _ = invoke("--config", str(config), "--json")

    objects = [json.loads(line) for line in stdout.splitlines()]
    assert exit_code == 0
    assert [item["payload"] for item in objects][1] == '{"name":"TruLaser"}'


def test_cli_invalid_row_time_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    path = tmp_path / "logs" / "audit.db"
    fill_log(path)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE audit_messages SET published_at = x'00' WHERE id = 1")
    connection.close()

    exit_code, stdout, stderr = invoke("--config", str(config), "--verify")

    assert exit_code == 2
    assert "row 1: published_at b'\\x00' is not an ISO 8601 time" in stderr
    assert stdout == ""


@pytest.mark.parametrize(
    ("option", "value", "language", "expected"),
    [
        ("--since", "yesterday", "en", "Invalid --since value 'yesterday': expected an ISO 8601"),
        ("--since", "yesterday", "pl", "Błędna wartość --since 'yesterday': oczekiwano daty"),
        ("--since", "02.03.2026", "en", "Invalid --since value '02.03.2026': expected"),
        ("--until", "10:01:30", "en", "Invalid --until value '10:01:30': expected"),
    ],
)
def test_cli_bad_time_exits_2(
    tmp_path: Path, option: str, value: str, language: str, expected: str
) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    fill_log(tmp_path / "logs" / "audit.db")

    exit_code, stdout, stderr = invoke("--config", str(config), option, value, language=language)

    assert exit_code == 2
    assert expected in stderr
    assert stdout == ""


def test_cli_empty_range_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    fill_log(tmp_path / "logs" / "audit.db")

    exit_code, _, stderr = invoke(
        "--config", str(config), "--since", "2026-03-03", "--until", "2026-03-02"
    )

    assert exit_code == 2
    assert "--since 2026-03-03 is not before --until 2026-03-02" in stderr


def test_cli_missing_log_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")

    exit_code, _, stderr = invoke("--config", str(config))

    assert exit_code == 2
    assert f"No audit log at {tmp_path / 'logs' / 'audit.db'}" in stderr
    assert not (tmp_path / "logs" / "audit.db").exists()


def test_cli_corrupt_log_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    (tmp_path / "logs" / "audit.db").write_bytes(b"damaged " * 1000)

    exit_code, _, stderr = invoke("--config", str(config), language="pl")

    assert exit_code == 2
    assert "Nie można odczytać dziennika audytu: audit log" in stderr
    assert "file is not a database" in stderr


def test_cli_invalid_config_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mqt://x")

    exit_code, _, stderr = invoke("--config", str(config))

    assert exit_code == 2
    assert f"{config}:4: broker.url: invalid URL 'mqt://x'" in stderr


def test_run_command_with_corrupt_log_exits_2(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, "mqtt://127.0.0.1:1883")
    load_config(config_path, {}).audit_log_path.write_bytes(b"damaged " * 1000)

    result = CliRunner().invoke(
        app, ["run", "--config", str(config_path)], env={"KOOPERANT_LANG": "en"}
    )

    assert result.exit_code == 2
    assert "Cannot use the audit log" in result.stderr
    assert "Traceback" not in result.stderr
