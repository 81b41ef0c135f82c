"""The store-and-forward queue: messages decided but not yet acknowledged by the broker.

Every offer, withdrawal, answer to a capacity request and clear of a retained topic is first
queued in table ``outbox`` of the agent's local SQLite file (the audit log file), with an
``Envelope``: a new message id and a sequence number from ``next_sequence``. The forwarder
(``agent.forwarder``) sends the rows in sequence order and, after the broker's PUBACK, calls
``delivered``, which deletes the row and inserts its audit row in one transaction. So when either
step fails, the message stays queued without an audit row and is sent again. A clear also takes a
sequence number, so it keeps its place among the other messages, but its payload stays empty.

The last sequence number handed out is kept in table ``outbox_sequence``, so numbers keep
increasing when the queue is empty. ``next_sequence`` also follows the clock, so they keep
increasing after the file is lost. ``enqueue`` is one ``BEGIN IMMEDIATE`` transaction, so the
agent and ``kooperant agent withdraw`` in another process can both queue into the same file.

The queue is bounded by the total payload bytes (``OutboxLimits.max_bytes``) and by age
(``OutboxLimits.max_age``). ``enqueue`` drops the oldest rows beyond either bound, counts them in
``dropped_messages`` and logs a WARNING with their number, the bound and the oldest topic.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.audit import (
    AuditRecord,
    MessageKind,
    database_error,
    format_time,
    insert_record,
    kind_and_resource,
    open_database,
)
from agent.errors import AuditLogError
from kooperant.protocol.envelope import Envelope, new_message_id, next_sequence

logger = logging.getLogger(__name__)

MEGABYTE = 1_000_000
DEFAULT_MAX_MEGABYTES = 100.0
DEFAULT_MAX_AGE_HOURS = 168.0

PayloadBuilder = Callable[[Envelope], bytes]
"""Builds the payload of a queued message from the envelope the queue assigned to it."""

TransactionStep = Callable[[sqlite3.Connection], "Sequence[OutgoingMessage]"]
"""Writes rows of its own inside a queue transaction and returns the messages to queue."""

_COLUMNS = "seq, message_id, topic, payload, retain, kind, resource, queued_at"


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """The bounds of the queue: total payload bytes and the age of the oldest row."""

    max_bytes: int = int(DEFAULT_MAX_MEGABYTES * MEGABYTE)
    max_age: timedelta = timedelta(hours=DEFAULT_MAX_AGE_HOURS)

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError(f"outbox max_bytes must be at least 1, got {self.max_bytes}")
        if self.max_age <= timedelta(0):
            raise ValueError(f"outbox max_age must be positive, got {self.max_age}")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to queue: its topic and its payload builder, or ``None`` for a clear."""

    topic: str
    build: PayloadBuilder | None
    retain: bool = True


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One row of the queue, with the payload exactly as it is to be sent."""

    seq: int
    message_id: str
    topic: str
    payload: bytes
    retain: bool
    kind: MessageKind
    resource: str
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxState:
    """The size of the queue at one moment, for the agent's status."""

    queued_messages: int
    queued_bytes: int
    oldest_queued_at: datetime | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """The queue in the SQLite file at ``path``; use it from one thread at a time.

    Raises ``AuditLogError`` naming the file when it cannot be opened, read or written. Close it
    with ``close`` or a ``with`` block.
    """

    def __init__(
        self,
        path: Path,
        limits: OutboxLimits | None = None,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = path
        self.limits = limits or OutboxLimits()
        self._clock = clock
        self._connection = open_database(path)
        self.dropped_messages = 0
        """Rows this object dropped to keep the queue within its limits."""

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def enqueue(self, messages: Sequence[OutgoingMessage]) -> list[QueuedMessage]:
        """Queue ``messages`` in this order, each with a new envelope, and apply the limits.

        Everything happens in one transaction: if a payload builder raises, nothing is queued
        and its exception propagates. A topic that is not an offer or withdrawal topic raises
        ``ValueError``.
        """
        return self.enqueue_after(lambda _connection: messages)

    def enqueue_after(self, write: TransactionStep) -> list[QueuedMessage]:
        """Run ``write`` and queue the messages it returns, in one ``BEGIN IMMEDIATE`` transaction.

        ``write`` gets the queue's connection inside the transaction, so the rows it writes and
        the queued messages are committed together, or neither when it or the queue raises. Its
        exception propagates unchanged; a failed SQLite statement raises ``AuditLogError``.
        """
        now = self._clock().astimezone(UTC)
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                messages = write(self._connection)
                queued = self._insert(messages, now)
                dropped = self._apply_limits(now)
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise self._error("cannot queue a message", error) from error
        for reason, count, oldest_topic in dropped:
            self.dropped_messages += count
            logger.warning(
                "Outbox dropped %d queued messages, oldest first, to stay within %s; the oldest "
                "was on %s",
                count,
                reason,
                oldest_topic,
            )
        return queued

    def oldest(self) -> QueuedMessage | None:
        """Return the queued message with the lowest sequence number, or ``None``."""
        rows = self._read(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq LIMIT 1", ())
        return _message(rows[0]) if rows else None

    def queued(self) -> list[QueuedMessage]:
        """Return every queued message in sequence order."""
        return [_message(row) for row in self._read(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq")]

    def latest_payloads(self) -> dict[str, bytes]:
        """Return the payload of the last queued message on each topic (empty for a clear)."""
        sql = (
            "SELECT topic, payload FROM outbox WHERE seq IN ("
            " SELECT max(seq) FROM outbox GROUP BY topic)"
        )
        return {topic: bytes(payload) for topic, payload in self._read(sql)}

    def delivered(self, message: QueuedMessage, published_at: datetime) -> AuditRecord:
        """Delete the row of an acknowledged ``message`` and insert its audit row, atomically.

        If either step fails, neither takes effect: the row stays queued and is sent again,
        which the aggregator recognises as a duplicate by its message id.
        """
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                record = insert_record(
                    self.path, self._connection, message.topic, message.payload, published_at
                )
                self._connection.execute("DELETE FROM outbox WHERE seq = ?", (message.seq,))
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise self._error("cannot record a delivered message", error) from error
        return record

    def discard(self, message: QueuedMessage) -> bool:
        """Delete the row of ``message`` without an audit row; return whether it was queued."""
        try:
            cursor = self._connection.execute("DELETE FROM outbox WHERE seq = ?", (message.seq,))
        except sqlite3.Error as error:
            raise self._error("cannot delete a queued message", error) from error
        return cursor.rowcount > 0

    def last_sequence(self) -> int:
        """Return the last sequence number handed out, 0 for a new file."""
        rows = self._read("SELECT last_seq FROM outbox_sequence WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def state(self) -> OutboxState:
        """Return the number of queued messages, their payload bytes and the oldest's time."""
        sql = "SELECT count(*), coalesce(sum(size), 0), min(queued_at) FROM outbox"
        count, size, oldest = self._read(sql)[0]
        oldest_at = None if oldest is None else datetime.fromisoformat(oldest)
        return OutboxState(int(count), int(size), oldest_at)

    def data_version(self) -> int:
        """Return SQLite's ``data_version``, which changes when another connection commits."""
        version: int = self._read("PRAGMA data_version")[0][0]
        return version

    def _insert(self, messages: Sequence[OutgoingMessage], now: datetime) -> list[QueuedMessage]:
        last = self._last_sequence_in_transaction()
        queued = []
        for outgoing in messages:
            kind, resource = kind_and_resource(outgoing.topic)
            envelope = Envelope(new_message_id(), next_sequence(last, now))
            payload = b"" if outgoing.build is None else outgoing.build(envelope)
            self._connection.execute(
                "INSERT INTO outbox (seq, message_id, topic, payload, retain, kind, resource,"
                " queued_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    envelope.seq,
                    envelope.message_id,
                    outgoing.topic,
                    payload,
                    int(outgoing.retain),
                    kind,
                    resource,
                    format_time(now),
                    len(payload),
                ),
            )
            queued.append(
                QueuedMessage(
                    envelope.seq,
                    envelope.message_id,
                    outgoing.topic,
                    payload,
                    outgoing.retain,
                    kind,
                    resource,
                    now,
                )
            )
            last = envelope.seq
        self._connection.execute(
            "INSERT INTO outbox_sequence (id, last_seq) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq",
            (last,),
        )
        return queued

    def _last_sequence_in_transaction(self) -> int:
        # The queue's own maximum guards against a sequence table edited or lost by hand.
        row = self._connection.execute(
            "SELECT max(coalesce((SELECT last_seq FROM outbox_sequence WHERE id = 1), 0),"
            " coalesce((SELECT max(seq) FROM outbox), 0))"
        ).fetchone()
        return int(row[0])

    def _apply_limits(self, now: datetime) -> list[tuple[str, int, str]]:
        """Delete the oldest rows beyond the limits; return (bound, count, oldest topic) each."""
        dropped = []
        max_age = self.limits.max_age
        cutoff = format_time(now - max_age)
        expired = self._connection.execute(
            "SELECT count(*), (SELECT topic FROM outbox WHERE queued_at < ? ORDER BY seq LIMIT 1)"
            " FROM outbox WHERE queued_at < ?",
            (cutoff, cutoff),
        ).fetchone()
        if expired[0]:
            self._connection.execute("DELETE FROM outbox WHERE queued_at < ?", (cutoff,))
            hours = max_age.total_seconds() / 3600
            dropped.append((f"max_age_hours {hours:g}", int(expired[0]), expired[1]))

        total = self._connection.execute("SELECT coalesce(sum(size), 0) FROM outbox").fetchone()[0]
        excess = int(total) - self.limits.max_bytes
        if excess > 0:
            dropped.append(self._drop_oldest_bytes(excess))
        return dropped

    def _drop_oldest_bytes(self, excess: int) -> tuple[str, int, str]:
        freed = 0
        last_seq = 0
        count = 0
        oldest_topic = ""
        cursor = self._connection.execute("SELECT seq, size, topic FROM outbox ORDER BY seq")
        for seq, size, topic in cursor:
            if count == 0:
                oldest_topic = topic
            freed += size
            last_seq = seq
            count += 1
            if freed >= excess:
                break
        cursor.close()
        self._connection.execute("DELETE FROM outbox WHERE seq <= ?", (last_seq,))
        megabytes = self.limits.max_bytes / MEGABYTE
        return (f"max_megabytes {megabytes:g}", count, oldest_topic)

    def _read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise self._error("cannot read the queue", error) from error

    def _error(self, action: str, error: sqlite3.Error) -> AuditLogError:
        return database_error(self.path, action, error)


def _message(row: tuple[Any, ...]) -> QueuedMessage:
    seq, message_id, topic, payload, retain, kind, resource, queued_at = row
    return QueuedMessage(
        seq,
        message_id,
        topic,
        bytes(payload),
        bool(retain),
        _message_kind(kind),
        resource,
        datetime.fromisoformat(queued_at),
    )


def _message_kind(value: str) -> MessageKind:
    if value == "offer":
        return "offer"
    if value == "answer":
        return "answer"
    return "withdrawal"
