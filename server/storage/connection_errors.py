"""The error for a database that cannot be reached, with a hint for its kind and failure."""

from __future__ import annotations

import re
import shlex

from sqlalchemy.engine import URL

from server.errors import DatabaseUnavailableError

DEFAULT_POSTGRES_PORT = 5432

# NOTE: the server writes the missing-database text in its lc_messages language and libpq the
# refused text in the client's. Both are English by default; other languages get the general hint.
_MISSING_DATABASE = re.compile(r'database "[^"]*" does not exist')
_REFUSED = "Connection refused"
# SQLite's text for SQLITE_NOTADB, raised when an existing file has no SQLite header.
_NOT_A_DATABASE = "file is not a database"
_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


def unavailable_error(url: URL, shown_url: str, message: str) -> DatabaseUnavailableError:
    """Return the error for a failed connection to ``url`` whose driver error is ``message``.

    ``shown_url`` is the URL with its password masked. The hint depends on the failure: create
    a missing PostgreSQL database, start a PostgreSQL server that refuses connections, or fix
    the folder of a SQLite file.
    """
    detail = message.strip().splitlines()[0] if message.strip() else "connection failed"
    if url.drivername == "sqlite" and _NOT_A_DATABASE in message:
        return DatabaseUnavailableError("database_sqlite_not_database", path=url.database)
    if url.drivername == "sqlite":
        return DatabaseUnavailableError("database_unavailable", url=shown_url, detail=detail)

    # NOTE: without a host, libpq uses the local Unix socket, which the hint calls localhost.
    host = url.host or "localhost"
    port = url.port or DEFAULT_POSTGRES_PORT
    name = url.database or ""
    if _MISSING_DATABASE.search(message):
        return DatabaseUnavailableError(
            "database_postgres_missing",
            url=shown_url,
            name=_sql_identifier(name),
            host=host,
            port=port,
            createdb=_createdb_command(url, host, port),
        )
    if _REFUSED in message:
        return DatabaseUnavailableError(
            "database_postgres_refused", url=shown_url, detail=detail, host=host, port=port
        )
    return DatabaseUnavailableError("database_postgres_unavailable", url=shown_url, detail=detail)


def _createdb_command(url: URL, host: str, port: int) -> str:
    arguments = ["createdb", "-h", host, "-p", str(port)]
    if url.username:
        arguments += ["-U", url.username]
    arguments.append(url.database or "")
    return shlex.join(arguments)


def _sql_identifier(name: str) -> str:
    if _PLAIN_IDENTIFIER.fullmatch(name):
        return name
    return '"' + name.replace('"', '""') + '"'
