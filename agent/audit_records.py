"""One row of the audit log as a value: ``AuditRecord``, and how a stored row is read into it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import AuditLogError

# SQLite storage class of each value type the sqlite3 module returns, for messages.
_SQLITE_TYPES: Mapping[type, str] = {
    bytes: "BLOB",
    int: "INTEGER",
    float: "REAL",
    type(None): "NULL",
}


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
    not_text: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Columns ``payload`` or ``sha256`` stored in another SQLite type than TEXT, e.g.
    ``{"payload": "BLOB"}``. The agent writes only text, so such a row was changed later."""

    @property
    def payload_bytes(self) -> bytes:
        """The payload as sent: its text encoded as UTF-8."""
        return self.payload.encode("utf-8")

    def hash_matches(self) -> bool:
        """Return whether the row is stored as written and its SHA-256 equals the payload's."""
        return not self.not_text and payload_sha256(self.payload_bytes) == self.sha256


def payload_sha256(payload: bytes) -> str:
    """Return the SHA-256 of ``payload`` as lowercase hex."""
    return hashlib.sha256(payload).hexdigest()


def record_from_row(path: Path, row: tuple[Any, ...]) -> AuditRecord:
    """Return the ``AuditRecord`` of one row of ``audit_messages`` read from the file at ``path``.

    SQLite keeps any type in any column, so a file edited outside kooperant may hold a BLOB where
    the agent wrote text. Such a value is decoded for display and named in ``not_text``. Raises
    ``AuditLogError`` naming the row when ``published_at`` is not an ISO 8601 time.
    """
    row_id, published_at, topic, resource, kind, payload, digest = row
    not_text = {
        column: _SQLITE_TYPES.get(type(value), type(value).__name__)
        for column, value in (("payload", payload), ("sha256", digest))
        if not isinstance(value, str)
    }
    try:
        moment = datetime.fromisoformat(published_at)
    except (TypeError, ValueError) as error:
        raise AuditLogError(
            path,
            f"row {row_id}: published_at {published_at!r} is not an ISO 8601 time, so the file "
            "was changed outside kooperant; move it away so a new log is started",
        ) from error
    return AuditRecord(
        row_id,
        moment,
        str(topic),
        str(resource),
        str(kind),
        _text(payload),
        _text(digest),
        not_text,
    )


def stored_bytes(value: object) -> bytes:
    """Return a stored payload as bytes: text encoded as UTF-8, a BLOB as it is."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
