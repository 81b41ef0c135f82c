"""Database URLs: the schemes kooperant accepts and how they are shown without the password."""

from __future__ import annotations

import re

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
    """Return ``url`` as written with its password shown as ``***``.

    Everything between ``USER:`` and the last ``@`` of the URL is masked, because an unencoded
    ``@`` or ``/`` in a password would otherwise leave its tail visible. A ``@`` in the path or
    query moves that mask past the host, which is then hidden too. A URL that SQLAlchemy cannot
    parse is shown as its scheme only.
    """
    try:
        make_url(url)
    except ArgumentError:
        # Without a parse the password cannot be located, so only the scheme part is shown.
        scheme, separator, _ = url.partition("://")
        return f"{scheme}{separator}..." if separator else "(unparsable URL)"

    scheme, _, rest = url.partition("://")
    credentials, at, after_credentials = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    # A user name cannot contain "/", so a "/" before the ":" means that the ":" and "@" are in
    # a path such as sqlite:////srv/a:b@c/kooperant.db.
    if not at or not colon or "/" in user:
        return url
    return f"{scheme}://{user}:***@{after_credentials}"


def parse_database_url(url: str) -> URL:
    """Return the SQLAlchemy URL for ``url``, or raise ``InvalidSettingError`` naming it."""
    if _authority(url).count("@") > 1:
        # SQLAlchemy would take the text after the first "@" as the host name.
        raise InvalidSettingError("database_url_unencoded_at", url=mask_password(url))
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        if "://" not in url:
            # mask_password cannot show such a URL, so the message names no URL at all.
            raise InvalidSettingError("database_url_unparsable") from error
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


def _authority(url: str) -> str:
    """Return the ``USER:PASSWORD@HOST:PORT`` part: up to the first ``/``, ``?`` or ``#``."""
    _, _, rest = url.partition("://")
    return re.split(r"[/?#]", rest, maxsplit=1)[0]
