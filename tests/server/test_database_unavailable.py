"""The API, the dashboard and /healthz while the PostgreSQL database refuses connections."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest

import server.auth
from server.api import create_app
from server.status import ServerStatus
from server.storage import Storage
from tests.conftest import POSTGRES_ADMIN_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture
async def client(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    # Every request queries the database for an account, instead of reusing the cached result.
    monkeypatch.setattr(server.auth, "ACCOUNTS_RECHECK_SECONDS", 0.0)
    storage = Storage(postgres_url)
    storage.migrate()
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as opened:
        yield opened
    storage.close()


@contextmanager
def connections_refused(database_url: str) -> Iterator[None]:
    """Refuse new connections to the database and end the open ones, until the block ends."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


async def test_api_database_down_gives_503(
    client: httpx.AsyncClient, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    open_mode = await client.get("/api/v1/resources")

    caplog.set_level(logging.INFO)
    with connections_refused(postgres_url):
        first = await client.get("/api/v1/resources")
        second = await client.get("/api/v1/resources")
    restored = await client.get("/api/v1/resources")

    assert open_mode.status_code == 200
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "database_unavailable"
    assert "postgres@" not in first.text
    assert second.status_code == 503
    assert restored.status_code == 200
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    auth_warnings = [record for record in warnings if record.name == "server.auth"]
    assert len(auth_warnings) == 1
    assert all(record.exc_info is None for record in warnings)
    auth_infos = [
        r for r in caplog.records if r.name == "server.auth" and r.levelno == logging.INFO
    ]
    assert len(auth_infos) == 1


async def test_dashboard_database_down_page_in_both_languages(
    client: httpx.AsyncClient, postgres_url: str
) -> None:
    await client.get("/")

    with connections_refused(postgres_url):
        polish = await client.get("/", headers={"Accept-Language": "pl"})
        english = await client.get("/", headers={"Accept-Language": "en"})

    assert polish.status_code == 503
    assert "Baza danych niedostępna" in polish.text
    assert english.status_code == 503
    assert "Database unavailable" in english.text
    assert "postgres@" not in english.text


async def test_healthz_database_down_hides_url(
    client: httpx.AsyncClient, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with connections_refused(postgres_url):
        failing = await client.get("/healthz")
        await client.get("/healthz")
    healthy = await client.get("/healthz")

    assert failing.status_code == 503
    assert failing.json() == {"status": "failing", "database": "unavailable", "broker": "connected"}
    assert healthy.json()["database"] == "ok"
    logged = [r for r in caplog.records if r.name == "server.monitoring_routes"]
    assert [r.levelno for r in logged] == [logging.WARNING, logging.INFO]
    assert "127.0.0.1:5432" in logged[0].getMessage()
