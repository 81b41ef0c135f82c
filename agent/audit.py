"""The local audit log: every message the broker acknowledged, as sent.

Each row contains the UTC time of publishing, the topic, the resource (for an answer, the request
id), the message kind (``offer``, ``withdrawal`` or ``answer``, from the topic), the payload text
(the exact bytes sent, decoded as UTF-8; empty for a message that clears a retained topic) and the
SHA-256 of those bytes. The log is one SQLite
file in WAL mode, so ``kooperant agent audit`` can read it while the agent writes. The same file
holds the owner's withdrawals (table ``withdrawals``, see ``agent.withdrawals``) and every public id
each internal resource was published under (table ``public_ids``), so a withdrawal can name the
topics of an id that an older policy gave with ``publish_as``, the store-and-forward queue of
messages not yet acknowledged (tables ``outbox`` and ``outbox_sequence``, see ``agent.outbox``)
and the capacity requests sent to this member with the owner's decisions (table ``requests``,
see ``agent.requests``). ``PRAGMA user_version`` stores the schema version; a file from a newer
kooperant is rejected instead of being written with the wrong layout. Every SQLite failure is
raised as ``AuditLogError`` naming the file.

Because every acknowledged message is recorded, the log also shows which topics the broker still
retains for this member: an offer or withdrawal topic whose latest row has a non-empty payload.

The stored hashes show that each recorded payload is unchanged. They cannot show that no row was
deleted, because rows are not chained to each other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

# AuditRecord and payload_sha256 are re-exported, because callers import them from here.
from agent.audit_records import AuditRecord as AuditRecord
from agent.audit_records import payload_sha256 as payload_sha256
from agent.audit_records import record_from_row, stored_bytes
from agent.errors import AuditLogError
from kooperant.protocol.topics import (
    TOPIC_ROOT,
    TopicError,
    check_identifier,
    parse_answer_topic,
    parse_offer_topic,
    parse_withdrawal_topic,
)

SCHEMA_VERSION = 5
DEFAULT_QUERY_LIMIT = 100

MessageKind = Literal["offer", "withdrawal", "answer"]

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
CREATE INDEX IF NOT EXISTS audit_messages_topic ON audit_messages (topic, id);
CREATE TABLE IF NOT EXISTS withdrawals (
    resource TEXT PRIMARY KEY,
    delete_history INTEGER NOT NULL,
    withdrawn_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS public_ids (
    resource TEXT NOT NULL,
    public_id TEXT NOT NULL,
    PRIMARY KEY (resource, public_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    kind TEXT NOT NULL,
    resource TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_queued_at ON outbox (queued_at);
CREATE TABLE IF NOT EXISTS outbox_sequence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    resource TEXT NOT NULL,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    decided_at TEXT,
    reason TEXT,
    automatic INTEGER NOT NULL DEFAULT 0,
    cleared_at TEXT,
    hold_ended_at TEXT,
    hold_end TEXT
);
"""

_COLUMNS = "id, published_at, topic, resource, kind, payload, sha256"


def open_database(path: Path) -> sqlite3.Connection:
    """Open the agent's local SQLite file at ``path`` in autocommit mode, creating its tables.

    Raises ``AuditLogError`` when the file cannot be opened or written, or comes from a newer
    kooperant.
    """
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        raise database_error(path, "cannot open the file", error) from error
    try:
        _prepare(path, connection)
    except AuditLogError:
        connection.close()
        raise
    except sqlite3.Error as error:
        connection.close()
        raise database_error(path, "cannot open the file", error) from error
    return connection


def create_log_folder(path: Path) -> None:
    """Create the missing folders above the audit log at ``path``, as ``agent run`` needs them.

    Raises ``AuditLogError`` naming the folder when it cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = f"cannot create the folder {path.parent} ({error.strerror or error})"
        raise AuditLogError(
            path, f"{reason}; create it, or set audit_log to another path"
        ) from error


def database_error(path: Path, action: str, error: sqlite3.Error) -> AuditLogError:
    """Return the ``AuditLogError`` for a failed ``action`` on the local SQLite file."""
    return AuditLogError(
        path,
        f"{action} ({error}); check the file's permissions and free disk space, or move a "
        "damaged file away so a new log is started",
    )


class AuditLog:
    """The audit log in the SQLite file at ``path``, created with its table if missing.

    Use it from one thread at a time. Close it with ``close`` or a ``with`` block.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = open_database(path)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def record(self, topic: str, payload: bytes, published_at: datetime) -> AuditRecord:
        """Store one acknowledged message and return its row.

        ``topic`` must be an offer or withdrawal topic, ``payload`` valid UTF-8 (empty for a
        message that clears the topic) and ``published_at`` aware; otherwise ``ValueError`` is
        raised, because the caller has a bug.
        """
        try:
            return insert_record(self.path, self._connection, topic, payload, published_at)
        except sqlite3.Error as error:
            raise self._error("cannot write a row", error) from error

    def query(
        self,
        resources: Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = DEFAULT_QUERY_LIMIT,
    ) -> list[AuditRecord]:
        """Return up to ``limit`` rows, newest first, published in ``[since, until)``.

        ``resources`` keeps only the rows about any of these resource ids, as in the topic.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        conditions: list[str] = []
        parameters: list[object] = []
        if resources is not None:
            ids = sorted(resources)
            conditions.append(f"resource IN ({', '.join('?' * len(ids))})")
            parameters.extend(ids)
        if since is not None:
            conditions.append("published_at >= ?")
            parameters.append(format_time(_to_utc(since, "since")))
        if until is not None:
            conditions.append("published_at < ?")
            parameters.append(format_time(_to_utc(until, "until")))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""

        sql = (
            f"SELECT {_COLUMNS} FROM audit_messages {where} "
            "ORDER BY published_at DESC, id DESC LIMIT ?"
        )
        try:
            rows = self._connection.execute(sql, (*parameters, limit)).fetchall()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error
        return [record_from_row(self.path, row) for row in rows]

    def count(self) -> int:
        """Return the number of rows."""
        try:
            row = self._connection.execute("SELECT count(*) FROM audit_messages").fetchone()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error
        count: int = row[0]
        return count

    def live_offer_topics(self, cluster: str, member: str) -> set[str]:
        """Return the offer topics of ``member`` whose latest message is an offer, not a clear."""
        return set(self.live_offers(cluster, member))

    def live_offers(self, cluster: str, member: str) -> dict[str, bytes]:
        """Return the offers of ``member`` still retained, by topic, as last sent."""
        return self._latest_payloads(_channel_prefix(cluster, member, "offers"))

    def live_withdrawals(self, cluster: str, member: str) -> dict[str, bytes]:
        """Return the withdrawal topics of ``member`` still retained, each with its payload."""
        return self._latest_payloads(_channel_prefix(cluster, member, "withdrawals"))

    def known_resources(self, cluster: str, member: str) -> set[str]:
        """Return every resource id that ``member`` ever sent an offer or withdrawal about."""
        prefix = _channel_prefix(cluster, member, "")
        # The resource column of an answer contains its request id, which names no resource.
        sql = (
            "SELECT DISTINCT resource FROM audit_messages WHERE topic >= ? AND topic < ?"
            " AND kind IN ('offer', 'withdrawal')"
        )
        try:
            rows = self._connection.execute(sql, (prefix, _prefix_end(prefix))).fetchall()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error
        return {resource for (resource,) in rows}

    def remember_public_ids(self, public_ids: Mapping[str, str]) -> None:
        """Record that each internal resource id was published under the public id it maps to."""
        rows = sorted(public_ids.items())
        try:
            self._connection.executemany(
                "INSERT OR IGNORE INTO public_ids (resource, public_id) VALUES (?, ?)", rows
            )
        except sqlite3.Error as error:
            raise self._error("cannot write a row", error) from error

    def public_ids_of(self, resource: str) -> set[str]:
        """Return every public id the internal ``resource`` was ever published under."""
        sql = "SELECT public_id FROM public_ids WHERE resource = ?"
        try:
            rows = self._connection.execute(sql, (resource,)).fetchall()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error
        return {public_id for (public_id,) in rows}

    def mismatched(self) -> Iterator[AuditRecord]:
        """Yield every row, oldest first, whose payload no longer matches its stored SHA-256."""
        try:
            cursor = self._connection.execute(f"SELECT {_COLUMNS} FROM audit_messages ORDER BY id")
            for row in cursor:
                record = record_from_row(self.path, row)
                if not record.hash_matches():
                    yield record
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error

    def _latest_payloads(self, prefix: str) -> dict[str, bytes]:
        # Row ids give the order of recording, which stays right when clocks jump. The range
        # condition matches the prefix on the (topic, id) index, unlike LIKE with its '_' wildcard.
        sql = (
            "SELECT topic, payload FROM audit_messages WHERE id IN ("
            " SELECT max(id) FROM audit_messages WHERE topic >= ? AND topic < ? GROUP BY topic"
            ")"
        )
        try:
            rows = self._connection.execute(sql, (prefix, _prefix_end(prefix))).fetchall()
        except sqlite3.Error as error:
            raise self._error("cannot read the rows", error) from error

        # An empty payload cleared the topic. A BLOB from an edited file is taken as its bytes.
        latest = {topic: stored_bytes(payload) for topic, payload in rows}
        return {topic: payload for topic, payload in latest.items() if payload}

    def _error(self, action: str, error: sqlite3.Error) -> AuditLogError:
        return database_error(self.path, action, error)


def insert_record(
    path: Path, connection: sqlite3.Connection, topic: str, payload: bytes, published_at: datetime
) -> AuditRecord:
    """Insert the audit row of one acknowledged message on ``connection`` and return it.

    Runs inside the caller's transaction, if one is open. Raises ``ValueError`` for a topic that
    is not an offer or withdrawal topic, a payload that is not UTF-8 or a naive ``published_at``,
    and ``sqlite3.Error`` when the insert fails.
    """
    kind, resource = kind_and_resource(topic)
    text = payload.decode("utf-8")
    moment = _to_utc(published_at, "published_at")
    digest = payload_sha256(payload)

    cursor = connection.execute(
        "INSERT INTO audit_messages (published_at, topic, resource, kind, payload, sha256)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (format_time(moment), topic, resource, kind, text, digest),
    )
    row_id = cursor.lastrowid
    assert row_id is not None  # set by every successful INSERT
    return AuditRecord(row_id, moment, topic, resource, kind, text, digest)


def _prepare(path: Path, connection: sqlite3.Connection) -> None:
    # The first statement reads the file header, so a file that is not SQLite fails here.
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise AuditLogError(
            path,
            f"schema version {version} is newer than {SCHEMA_VERSION}, the newest this "
            "kooperant supports; upgrade kooperant or use another file",
        )
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise AuditLogError(path, f"cannot switch to WAL mode (journal mode is {mode})")

    # BEGIN IMMEDIATE takes the write lock, so an unwritable file fails now, not on the
    # first publish.
    # A file at the current version is not written to, so reading it changes nothing.
    script = "BEGIN IMMEDIATE;\n"
    if version < SCHEMA_VERSION:
        # Every statement of the schema is IF NOT EXISTS, so it also upgrades an older file.
        script += f"{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\n"
    script += "COMMIT;"
    try:
        connection.executescript(script)
    except sqlite3.Error:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def kind_and_resource(topic: str) -> tuple[MessageKind, str]:
    """Return the message kind of ``topic`` and the id it names: a resource, or for an answer
    the request id. Raises ``ValueError`` for a topic the agent does not publish on."""
    try:
        _, _, resource = parse_offer_topic(topic)
        return "offer", resource
    except TopicError:
        pass
    try:
        _, _, request_id = parse_answer_topic(topic)
        return "answer", request_id
    except TopicError:
        pass
    try:
        _, _, resource = parse_withdrawal_topic(topic)
    except TopicError as error:
        raise ValueError(
            f"cannot record or queue a message on {topic!r}: not an offer, withdrawal or answer "
            f"topic ({error})"
        ) from error
    return "withdrawal", resource


def _channel_prefix(cluster: str, member: str, channel: str) -> str:
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    prefix = f"{TOPIC_ROOT}/{cluster}/{member}/"
    return f"{prefix}{channel}/" if channel else prefix


def _prefix_end(prefix: str) -> str:
    # Every string that starts with ``prefix`` sorts below this one, because the prefix ends in
    # '/' and '0' follows '/' in ASCII and in SQLite's byte-wise comparison.
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _to_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must have a time zone, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    # A fixed width (always microseconds, always +00:00) keeps text order equal to time order.
    return moment.isoformat(timespec="microseconds")
