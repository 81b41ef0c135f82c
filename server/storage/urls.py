"""Database URLs: the schemes kooperant accepts and how they are shown without the password."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from server.errors import InvalidSettingError

DEFAULT_DATABASE_URL = "sqlite:///kooperant.db"

# The psycopg 3 driver is the one installed; a plain ``postgresql://`` would make SQLAlchemy
# look for psycopg2.
_SCHEME_REWRITES = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "sqlite": "sqlite",
}


def mask_password(url: str) -> str:
    """Return ``url`` with its password shown as ``***``, or only its scheme if unparsable."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Without a parse the password cannot be located, so only the scheme part is shown.
        scheme, separator, _ = url.partition("://")
        return f"{scheme}{separator}..." if separator else "(unparsable URL)"
    return parsed.render_as_string(hide_password=True)


def parse_database_url(url: str) -> URL:
    """Return the SQLAlchemy URL for ``url``, or raise ``InvalidSettingError`` naming it."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise InvalidSettingError("database_url_invalid", url=mask_password(url)) from error

    driver = _SCHEME_REWRITES.get(parsed.drivername)
    if driver is None:
        raise InvalidSettingError("database_url_scheme", url=mask_password(url))
    if driver == "sqlite" and not parsed.database:
        # An empty path would open an in-memory database that disappears with each connection.
        raise InvalidSettingError("database_url_sqlite_path", url=mask_password(url))
    if driver != "sqlite" and not parsed.database:
        raise InvalidSettingError("database_url_postgres_name", url=mask_password(url))
    return parsed.set(drivername=driver)
