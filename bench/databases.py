"""A throwaway PostgreSQL database for a benchmark, created and dropped by the script itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL, make_url


@contextmanager
def bench_database(server_url: URL, *, keep: bool) -> Iterator[str]:
    """Create the database ``kooperant_bench_<random>`` and yield its URL; drop it after."""
    name = f"kooperant_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg_url(server_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    database_url = server_url.set(drivername="postgresql", database=name)
    print(f"database: {name}")
    try:
        yield database_url.render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept database: {database_url.render_as_string(hide_password=True)}")
        else:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def psycopg_url(url: URL | str) -> str:
    """Return ``url`` as a libpq URL that psycopg accepts, password included."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
