"""The owner's withdrawals: resources the owner took back with ``kooperant agent withdraw``.

They live in table ``withdrawals`` of the agent's local SQLite file (the audit log file), so the
``withdraw`` and ``restore`` commands can change them while the agent runs. The agent notices a
change within a second by polling ``PRAGMA data_version``, which changes whenever another
connection commits to the file. A withdrawn resource is withheld from publishing until the owner
runs ``kooperant agent restore``. The key is the resource id the owner gave, resolved to the
internal id where the config or the policy names it, so the agent matches it against both the
internal and the public id of each offer.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.audit import database_error, open_database
from agent.errors import AuditLogError
from agent.table_watch import TableWatch
from kooperant.protocol import WithdrawalReason

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OwnerWithdrawal:
    """One resource the owner withdrew, and whether its history is to be deleted too."""

    resource: str
    delete_history: bool
    withdrawn_at: datetime


@dataclass(frozen=True, slots=True)
class WithdrawalNotice:
    """Why a public resource is not offered: the content of the withdrawal the agent sends."""

    reason: WithdrawalReason
    delete_history: bool = False


NOT_SHARED = WithdrawalNotice(WithdrawalReason.NOT_SHARED)


class WithdrawalTable:
    """The ``withdrawals`` table in the SQLite file at ``path``, created if missing.

    Raises ``AuditLogError`` naming the file when it cannot be opened, read or written. Use it
    from one thread at a time. Close it with ``close`` or a ``with`` block.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = open_database(path)

    def __enter__(self) -> WithdrawalTable:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def add(self, resource: str, delete_history: bool, withdrawn_at: datetime) -> OwnerWithdrawal:
        """Record that the owner withdrew ``resource``, replacing an earlier record of it."""
        moment = withdrawn_at.astimezone(UTC)
        self._execute(
            "INSERT INTO withdrawals (resource, delete_history, withdrawn_at) VALUES (?, ?, ?)"
            " ON CONFLICT (resource) DO UPDATE SET delete_history = excluded.delete_history,"
            " withdrawn_at = excluded.withdrawn_at",
            (resource, int(delete_history), moment.isoformat(timespec="microseconds")),
            "cannot write a row",
        )
        return OwnerWithdrawal(resource, delete_history, moment)

    def remove(self, resource: str) -> bool:
        """Delete the record of ``resource`` and return whether there was one."""
        cursor = self._execute(
            "DELETE FROM withdrawals WHERE resource = ?", (resource,), "cannot write a row"
        )
        return cursor.rowcount > 0

    def read(self) -> dict[str, OwnerWithdrawal]:
        """Return every recorded withdrawal by resource id."""
        cursor = self._execute(
            "SELECT resource, delete_history, withdrawn_at FROM withdrawals ORDER BY resource",
            (),
            "cannot read the rows",
        )
        return {
            resource: OwnerWithdrawal(resource, bool(delete), datetime.fromisoformat(moment))
            for resource, delete, moment in cursor.fetchall()
        }

    def data_version(self) -> int:
        """Return SQLite's ``data_version``, which changes when another connection commits."""
        cursor = self._execute("PRAGMA data_version", (), "cannot read the rows")
        version: int = cursor.fetchone()[0]
        return version

    def _execute(self, sql: str, parameters: tuple[object, ...], action: str) -> sqlite3.Cursor:
        try:
            return self._connection.execute(sql, parameters)
        except sqlite3.Error as error:
            raise database_error(self.path, action, error) from error


class WithdrawalReader:
    """The owner's withdrawals as last read from ``table``; read failures are logged once.

    After a failed read the withdrawals read before stay in force.
    """

    def __init__(self, table: WithdrawalTable) -> None:
        self._table = table
        self.current: dict[str, OwnerWithdrawal] = {}
        self._watch = TableWatch(table.data_version, "the owner's withdrawals")

    def poll(self) -> bool:
        """Read the table if another connection committed since the last poll.

        Returns whether the withdrawals changed.
        """
        if not self._watch.changed():
            return False
        return self.read()

    def read(self) -> bool:
        """Read the table and return whether the withdrawals changed since the last reading."""
        try:
            withdrawals = self._table.read()
        except AuditLogError as error:
            self._watch.failed(error)
            return False
        self._watch.succeeded()
        if withdrawals == self.current:
            return False

        changed = sorted(key for key, item in withdrawals.items() if self.current.get(key) != item)
        restored = sorted(set(self.current) - set(withdrawals))
        logger.info(
            "Owner's withdrawals changed: withdrawn or changed %s, restored %s",
            ", ".join(changed) or "none",
            ", ".join(restored) or "none",
        )
        self.current = withdrawals
        return True


def owner_withdrawal(
    withdrawals: Mapping[str, OwnerWithdrawal], resource: str, public_resource: str | None
) -> OwnerWithdrawal | None:
    """Return the owner's withdrawal of a resource known by its internal and public id."""
    found = withdrawals.get(resource)
    if found is None and public_resource is not None:
        found = withdrawals.get(public_resource)
    return found
