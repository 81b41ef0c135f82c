"""Per-member write serialisation on PostgreSQL and SQLite.

Ingest may run several workers, each with its own connection. Every write transaction about a
member first takes that member's lock, so two workers cannot both read the stored state, each
decide that their message is newer, and let the older one be written last.

PostgreSQL takes a transaction-level advisory lock on a 64-bit hash of ``cluster/member``; two
members whose hashes collide only wait for each other. SQLite has one writer per database file,
so a write transaction starts with ``BEGIN IMMEDIATE``, which takes the write lock at once
instead of at the first write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, event, text

# Execution option that makes the SQLite "begin" hook emit BEGIN IMMEDIATE.
WRITE_TRANSACTION_OPTION = "kooperant_write_transaction"

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
# The locks of many members, taken one after the other in the order of their lock keys.
_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(lock_key) FROM ("
    "SELECT DISTINCT hashtextextended(name, 0) AS lock_key "
    "FROM unnest(CAST(:keys AS text[])) AS name ORDER BY lock_key) AS ordered"
)
_TRY_ADVISORY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


def configure_sqlite_engine(engine: Engine) -> None:
    """Let SQLAlchemy emit BEGIN on ``engine``'s connections, and turn on WAL.

    The sqlite3 module would otherwise start a transaction only at the first write, which is
    too late to serialise a read followed by a write.
    """
    event.listen(engine, "connect", _configure_connection)
    event.listen(engine, "begin", _begin)


def lock_member(connection: Connection, cluster: str, member: str) -> None:
    """Take the write lock of ``cluster/member`` until the end of the current transaction.

    On SQLite the BEGIN IMMEDIATE of the transaction already holds the database's write lock.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_ADVISORY_LOCK, {"key": f"{cluster}/{member}"})


def lock_members(connection: Connection, members: Iterable[tuple[str, str]]) -> None:
    """Take the write locks of all ``members`` (cluster, member) until the end of the transaction.

    The locks are taken in the order of their 64-bit lock keys, so two transactions that lock
    overlapping sets of members wait for each other instead of deadlocking. A single-member
    write holds one lock only and cannot close a cycle either.
    """
    if connection.dialect.name != "postgresql":
        return
    names = sorted({f"{cluster}/{member}" for cluster, member in members})
    if names:
        connection.execute(_ADVISORY_LOCKS, {"keys": names})


def try_lock(connection: Connection, name: str) -> bool:
    """Take the lock ``name`` until the end of the current transaction unless another holds it.

    Returns whether this transaction holds the lock now. The names share the hash space of the
    member locks, which are ``cluster/member`` and so never equal a name with a space. On
    SQLite the BEGIN IMMEDIATE of the transaction already holds the database's write lock.
    """
    if connection.dialect.name != "postgresql":
        return True
    return bool(connection.execute(_TRY_ADVISORY_LOCK, {"key": name}).scalar_one())


def _configure_connection(dbapi_connection: Any, _record: object) -> None:
    # With isolation_level None the sqlite3 module emits no BEGIN of its own; _begin does.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while ingest writes in another thread.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _begin(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITE_TRANSACTION_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")
