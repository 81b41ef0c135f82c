"""Without ``--trusted-proxy`` the server ignores X-Forwarded-For and X-Forwarded-Proto."""

from __future__ import annotations

from pathlib import Path

from kooperant.net import free_tcp_port
from server.auth import SESSION_COOKIE
from server.login_limits import MAX_ADDRESS_FAILURES
from server.passwords import hash_password
from server.service import ServerSettings
from server.storage import Storage
from tests.server.helpers import T0
from tests.server.test_service import running_server

PASSWORD = "coordinator password 1"


def add_coordinator(database: str) -> None:
    storage = Storage(database)
    try:
        storage.migrate()
        storage.create_user(
            username="coord",
            password_hash=hash_password(PASSWORD),
            role="coordinator",
            cluster="c1",
            member=None,
            display_name=None,
            must_change_password=False,
            now=T0,
        )
    finally:
        storage.close()


async def test_forwarded_headers_ignored(tmp_path: Path, free_port: int) -> None:
    settings = ServerSettings(
        database=f"sqlite:///{tmp_path / 'k.db'}",
        http_port=free_port,
        embedded_broker_port=free_tcp_port(),
    )
    add_coordinator(settings.database)

    async with running_server(settings) as client:
        forged_https = await client.post(
            "/login",
            data={"username": "coord", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.200", "X-Forwarded-Proto": "https"},
        )
        client.cookies.clear()
        for number in range(MAX_ADDRESS_FAILURES):
            failed = await client.post(
                "/login",
                data={"username": f"guess{number}", "password": "wrong password!"},
                headers={"X-Forwarded-For": f"203.0.113.{number}"},
            )
            assert failed.status_code == 401, failed.text
        locked = await client.post(
            "/login",
            data={"username": "coord", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.1"},
        )

    assert forged_https.status_code == 303
    assert forged_https.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
    assert "secure" not in forged_https.headers["set-cookie"].lower()
    # Every failure came from 127.0.0.1, so that address key is locked whatever the header held.
    assert locked.status_code == 429
