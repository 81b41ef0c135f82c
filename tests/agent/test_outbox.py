"""The store-and-forward queue in the agent's SQLite file: order, limits, persistence, atomicity."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.audit import SCHEMA_VERSION, AuditLog
from agent.errors import AuditLogError
from agent.outbox import Outbox, OutboxLimits, OutgoingMessage
from kooperant.protocol import offer_topic, withdrawal_topic
from kooperant.protocol.envelope import Envelope

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
CLUSTER = "outbox-test"
MEMBER = "acme"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def offer_message(resource: str, size: int = 10) -> OutgoingMessage:
    def build(envelope: Envelope) -> bytes:
        data = {"message_id": envelope.message_id, "seq": envelope.seq, "fill": "x" * size}
        return json.dumps(data).encode()

    return OutgoingMessage(offer_topic(CLUSTER, MEMBER, resource), build)


def clear_message(resource: str) -> OutgoingMessage:
    return OutgoingMessage(offer_topic(CLUSTER, MEMBER, resource), None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    with Outbox(tmp_path / "audit.db", clock=clock) as queue:
        yield queue


def test_enqueue_keeps_order_and_envelope(outbox: Outbox) -> None:
    queued = outbox.enqueue([offer_message("cnc-1"), clear_message("cnc-2")])
    queued += outbox.enqueue([offer_message("cnc-3")])

    stored = outbox.queued()

    assert [message.seq for message in stored] == [message.seq for message in queued]
    assert [message.resource for message in stored] == ["cnc-1", "cnc-2", "cnc-3"]
    assert stored[0].seq < stored[1].seq < stored[2].seq
    assert json.loads(stored[0].payload)["seq"] == stored[0].seq
    assert json.loads(stored[0].payload)["message_id"] == stored[0].message_id
    assert stored[1].payload == b""
    assert len({message.message_id for message in stored}) == 3
    assert outbox.oldest() == stored[0]


def test_sequence_follows_clock(outbox: Outbox) -> None:
    microseconds = int((START - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**6

    first, second = outbox.enqueue([offer_message("cnc-1"), offer_message("cnc-1")])

    assert first.seq == microseconds
    assert second.seq == microseconds + 1


def test_sequence_survives_empty_queue(outbox: Outbox, clock: Clock) -> None:
    (first,) = outbox.enqueue([offer_message("cnc-1")])
    outbox.delivered(first, START)
    clock.now = START - timedelta(hours=1)  # the clock went back meanwhile

    (second,) = outbox.enqueue([offer_message("cnc-1")])

    assert outbox.queued() == [second]
    assert second.seq == first.seq + 1
    assert outbox.last_sequence() == second.seq


def test_sequence_survives_reopen(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "audit.db"
    with Outbox(path, clock=clock) as queue:
        (first,) = queue.enqueue([offer_message("cnc-1")])
    clock.now = START - timedelta(days=1)

    with Outbox(path, clock=clock) as queue:
        kept = queue.queued()
        (second,) = queue.enqueue([offer_message("cnc-2")])

    assert kept == [first]
    assert second.seq == first.seq + 1


def test_sequence_after_file_deleted(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "audit.db"
    with Outbox(path, clock=clock) as queue:
        (first,) = queue.enqueue([offer_message("cnc-1")])
    path.unlink()
    clock.now = START + timedelta(seconds=1)

    with Outbox(path, clock=clock) as queue:
        (second,) = queue.enqueue([offer_message("cnc-1")])

    assert second.seq > first.seq


def test_size_limit_drops_oldest(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    limits = OutboxLimits(max_bytes=1000)
    with Outbox(tmp_path / "audit.db", limits, clock=clock) as queue:
        queue.enqueue([offer_message(f"cnc-{number}", size=200) for number in range(3)])
        with caplog.at_level(logging.WARNING, logger="agent.outbox"):
            queue.enqueue([offer_message("cnc-9", size=200)])
        left = [message.resource for message in queue.queued()]
        dropped = queue.dropped_messages
        total = queue.state().queued_bytes

    assert left == ["cnc-1", "cnc-2", "cnc-9"]
    assert dropped == 1
    assert total <= 1000
    (record,) = caplog.records
    message = record.getMessage()
    assert "dropped 1 queued messages, oldest first, to stay within max_megabytes 0.001" in message
    assert offer_topic(CLUSTER, MEMBER, "cnc-0") in message


def test_age_limit_drops_oldest(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    limits = OutboxLimits(max_age=timedelta(hours=2))
    with Outbox(tmp_path / "audit.db", limits, clock=clock) as queue:
        queue.enqueue([offer_message("cnc-1"), offer_message("cnc-2")])
        clock.now = START + timedelta(hours=1)
        queue.enqueue([offer_message("cnc-3")])
        clock.now = START + timedelta(hours=2, seconds=1)
        with caplog.at_level(logging.WARNING, logger="agent.outbox"):
            queue.enqueue([offer_message("cnc-4")])
        left = [message.resource for message in queue.queued()]
        dropped = queue.dropped_messages
        oldest = queue.state().oldest_queued_at

    assert left == ["cnc-3", "cnc-4"]
    assert dropped == 2
    assert oldest == START + timedelta(hours=1)
    assert "dropped 2 queued messages, oldest first, to stay within max_age_hours 2" in (
        caplog.records[0].getMessage()
    )


def test_age_limit_keeps_fresh_rows(outbox: Outbox, clock: Clock) -> None:
    outbox.enqueue([offer_message("cnc-1")])
    clock.now = START + timedelta(hours=167)

    outbox.enqueue([offer_message("cnc-2")])

    assert len(outbox.queued()) == 2
    assert outbox.dropped_messages == 0


def test_delivered_moves_row_to_audit(tmp_path: Path, outbox: Outbox) -> None:
    (message,) = outbox.enqueue([offer_message("cnc-1")])

    record = outbox.delivered(message, START + timedelta(seconds=5))

    with AuditLog(tmp_path / "audit.db") as log:
        (stored,) = log.query()
    assert outbox.queued() == []
    assert stored == record
    assert stored.payload_bytes == message.payload
    assert stored.published_at == START + timedelta(seconds=5)
    assert stored.kind == "offer"


def test_delivered_failure_changes_nothing(tmp_path: Path, outbox: Outbox) -> None:
    (message,) = outbox.enqueue([offer_message("cnc-1")])
    # The audit row is inserted first; the delete then fails, as a full disk might.
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        connection.execute(
            "CREATE TRIGGER fail_delete BEFORE DELETE ON outbox "
            "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
        )

    with pytest.raises(AuditLogError, match="cannot record a delivered message"):
        outbox.delivered(message, START)

    with AuditLog(tmp_path / "audit.db") as log:
        audit_rows = log.count()
    assert outbox.queued() == [message]
    assert audit_rows == 0


def test_builder_error_queues_nothing(outbox: Outbox) -> None:
    def broken(envelope: Envelope) -> bytes:
        raise ValueError("payload too large")

    failing = OutgoingMessage(offer_topic(CLUSTER, MEMBER, "cnc-2"), broken)
    with pytest.raises(ValueError, match="payload too large"):
        outbox.enqueue([offer_message("cnc-1"), failing])

    assert outbox.queued() == []
    assert outbox.last_sequence() == 0


def test_enqueue_rejects_foreign_topic(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="cannot record or queue a message on 'other/topic'"):
        outbox.enqueue([OutgoingMessage("other/topic", None)])


def test_other_connection_sees_rows(tmp_path: Path, outbox: Outbox, clock: Clock) -> None:
    version = outbox.data_version()
    with Outbox(tmp_path / "audit.db", clock=clock) as other:
        (message,) = other.enqueue([OutgoingMessage(withdrawal_topic(CLUSTER, MEMBER, "a"), None)])

    assert outbox.data_version() != version
    assert outbox.queued() == [message]
    assert message.kind == "withdrawal"


def test_latest_payloads_per_topic(outbox: Outbox) -> None:
    outbox.enqueue([offer_message("cnc-1"), offer_message("cnc-2"), clear_message("cnc-1")])

    latest = outbox.latest_payloads()

    assert latest[offer_topic(CLUSTER, MEMBER, "cnc-1")] == b""
    assert latest[offer_topic(CLUSTER, MEMBER, "cnc-2")] != b""


def test_version_3_file_upgraded(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "audit.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE audit_messages (id INTEGER PRIMARY KEY, published_at TEXT NOT NULL,"
            " topic TEXT NOT NULL, resource TEXT NOT NULL, kind TEXT NOT NULL,"
            " payload TEXT NOT NULL, sha256 TEXT NOT NULL)"
        )
        connection.execute("PRAGMA user_version = 3")
    connection.close()

    with Outbox(path, clock=clock) as queue:
        queue.enqueue([offer_message("cnc-1")])
        count = len(queue.queued())
    with sqlite3.connect(path) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()

    assert count == 1
    assert version == SCHEMA_VERSION == 5


def test_limits_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="max_bytes must be at least 1, got 0"):
        OutboxLimits(max_bytes=0)
    with pytest.raises(ValueError, match="max_age must be positive"):
        OutboxLimits(max_age=timedelta(0))
