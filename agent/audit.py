"""The local audit log: every message the broker acknowledged, as sent.

Each row contains the UTC time of publishing, the topic, the resource, the message kind, the payload
text (the exact bytes sent, decoded as UTF-8) and the SHA-256 of those bytes. The log is one
SQLite file in WAL mode, so ``kooperant agent audit`` can read it while the agent writes.
``PRAGMA user_version`` stores the schema version; a file from a newer kooperant is rejected
instead of being written with the wrong layout. Every SQLite failure is raised as
``AuditLogError`` naming the file.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agent.errors import AuditLogError
from kooperant.protocol.topics import TopicError, parse_offer_topic

SCHEMA_VERSION = 1
DEFAULT_QUERY_LIMIT = 100

MessageKind = Literal["offer"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_messages (
    id INTEGER PRIMARY KEY,
    published_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    resource TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_messages_resource_time
    ON audit_messages (resource, published_at);
CREATE INDEX IF NOT EXISTS audit_messages_time ON audit_messages (published_at);
"""

_COLUMNS = "id, published_at, topic, resource, kind, payload, sha256"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One published message as stored in the audit log."""

    id: int
    published_at: datetime
    topic: str
    resource: str
    kind: str
    payload: str
    sha256: str

    @property
    def payload_bytes(self) -> bytes:
        """The payload as sent: its text encoded as UTF-8."""
        return self.payload.encode("utf-8")

    def hash_matches(self) -> bool:
        """Return whether the stored SHA-256 still equals the hash of the stored payload."""
        return payload_sha256(self.payload_bytes) == self.sha256


def payload_sha256(payload: bytes) -> str:
    """Return the SHA-256 of ``payload`` as lowercase hex."""
    return hashlib.sha256(payload).hexdigest()


class AuditLog:
    """The audit log in the SQLite file at ``path``, created with its table if missing.

    Use it from one thread at a time. Close it with ``close`` or a ``with`` block.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._connection = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise self._error("cannot open the file", error) from error
        try:
            self._prepare()
        except AuditLogError:
            self._connection.close()
            raise
        except sqlite3.Error as error:
            self._connection.close()
            raise self._error("cannot open the file", error) from error

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def record(
        self, topic: str, payload: bytes, published_at: datetime, kind: MessageKind = "offer"
    ) -> AuditRecord:
        """Store one acknowledged message and return its row.

        ``topic`` must be an offer topic, ``payload`` valid UTF-8 and ``published_at`` aware;
        otherwise ``ValueError`` is raised, because the caller has a bug.
        """
        try:
            _, _, resource = parse_offer_topic(topic)
        except TopicError as error:
            raise ValueError(f"cannot record a message on {topic!r}: {error}") from error
        text = payload.decode("utf-8")
        moment = _to_utc(published_at, "published_at")
        digest = payload_sha256(payload)

        try:
            cursor = self._connection.execute(
                "INSERT INTO audit_messages (published_at, topic, resource, kind, payload, sha256)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_format_time(moment), topic, resource, kind, text, digest),
            )
        except sqlite3.Error as error:
            raise self._error("cannot write a row", error) from error
        row_id = cursor.lastrowid
        assert row_id is not None  # set by every successful INSERT
        return AuditRecord(row_id, moment, topic, resource, kind, text, digest)

    def query(
        self,
        resource: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_QUERY_LIMIT,
    ) -> list[AuditRecord]:
        """Return up to ``limit`` rows, newest first, published in ``[since, until)``."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        conditions: list[str] = []
        parameters: list[object] = []
        if resource is not None:
            conditions.append("resource = ?")
            parameters.append(resource)
        if since is not None:
            conditions.append("published_at >= ?")
            parameters.append(_format_time(_to_utc(since, "since")))
        if until is not None:
            conditions.append("published_at < ?")
            parameters.append(_format_time(_to_utc(until, "until")))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""

        sql = (
            f"SELECT {_COLUMNS} FROM audit_messages {where} "
            "ORDER BY published_at DESC, id DESC LIMIT ?"
        )
        try:
            rows = self._connection.execute(sql, (*parameters, limit)).fetchall()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error
        return [_to_record(row) for row in rows]

    def count(self) -> int:
        """Return the number of rows."""
        try:
            row = self._connection.execute("SELECT count(*) FROM audit_messages").fetchone()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error
        count: int = row[0]
        return count

    def mismatched(self) -> Iterator[AuditRecord]:
        """Yield every row, oldest first, whose payload no longer matches its stored SHA-256."""
        try:
            cursor = self._connection.execute(f"SELECT {_COLUMNS} FROM audit_messages ORDER BY id")
            for row in cursor:
                record = _to_record(row)
                if not record.hash_matches():
                    yield record
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error

    def _prepare(self) -> None:
        # The first statement reads the file header, so a file that is not SQLite fails here.
        version = self._connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise AuditLogError(
                self.path,
                f"schema version {version} is newer than {SCHEMA_VERSION}, the newest this "
                "kooperant supports; upgrade kooperant or use another file",
            )
        mode = self._connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise AuditLogError(self.path, f"cannot switch to WAL mode (journal mode is {mode})")

        # BEGIN IMMEDIATE takes the write lock, so an unwritable file fails now, not on the
        # first publish.
        # A file at the current version is not written to, so reading it changes nothing.
        script = "BEGIN IMMEDIATE;\n"
        if version < SCHEMA_VERSION:
            script += f"{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\n"
        script += "COMMIT;"
        try:
            self._connection.executescript(script)
        except sqlite3.Error:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            raise

    def _error(self, action: str, error: sqlite3.Error) -> AuditLogError:
        return AuditLogError(
            self.path,
            f"{action} ({error}); check the file's permissions and free disk space, or move a "
            "damaged file away so a new log is started",
        )


def _to_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must have a time zone, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def _format_time(moment: datetime) -> str:
    # A fixed width (always microseconds, always +00:00) keeps text order equal to time order.
    return moment.isoformat(timespec="microseconds")


def _to_record(row: tuple[int, str, str, str, str, str, str]) -> AuditRecord:
    row_id, published_at, topic, resource, kind, payload, digest = row
    return AuditRecord(
        row_id, datetime.fromisoformat(published_at), topic, resource, kind, payload, digest
    )
