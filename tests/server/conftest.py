"""Fixtures of the server tests: a migrated storage on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.storage import Storage


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kooperant.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The URL of an empty database of each supported kind."""
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    opened = Storage(database_url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def sqlite_storage(sqlite_url: str) -> Iterator[Storage]:
    opened = Storage(sqlite_url)
    opened.migrate()
    yield opened
    opened.close()
