"""Member status (online or offline), last-seen time and registration in the API and pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.api import create_app
from server.status import ServerStatus
from server.storage import Storage
from tests.server.helpers import T0, T1, hours, machine_offer, member_status, storage_offer


@pytest.fixture
async def client(sqlite_storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a cluster where acme is online, beta offline and gamma sent no status."""
    sqlite_storage.register_member("pomorskie-metal", "acme", T0)
    sqlite_storage.store_offer(machine_offer(), T0, message_id="offer-acme")
    sqlite_storage.store_status(member_status(connected_at=T0), T0, message_id="birth-acme")
    sqlite_storage.store_status(
        member_status(member="beta", online=False, connected_at=T0), T1, message_id="will-beta"
    )
    sqlite_storage.store_offer(storage_offer(member="gamma"), T0 + hours(2), message_id="g-1")
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as opened:
        yield opened


async def members_by_id(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/members")
    assert response.status_code == 200, response.text
    return {item["member"]: item for item in response.json()["items"]}


async def dashboard(client: httpx.AsyncClient, language: str, path: str = "/members") -> str:
    response = await client.get(path, params={"lang": language})
    assert response.status_code == 200, response.text
    return response.text


async def test_members_api_online_registered(client: httpx.AsyncClient) -> None:
    acme = (await members_by_id(client))["acme"]

    assert acme["status"] == "online"
    assert acme["status_since"] == "2026-12-07T06:00:00+00:00"
    assert acme["last_seen"] == "2026-12-07T06:00:00+00:00"
    assert acme["registered"] is True
    assert acme["resources"] == 1


async def test_members_api_offline_without_offers(client: httpx.AsyncClient) -> None:
    beta = (await members_by_id(client))["beta"]

    assert beta["status"] == "offline"
    assert beta["status_since"] == "2026-12-07T07:00:00+00:00"
    assert beta["last_seen"] == "2026-12-07T07:00:00+00:00"
    assert beta["registered"] is False
    assert beta["resources"] == 0


async def test_members_api_no_status(client: httpx.AsyncClient) -> None:
    gamma = (await members_by_id(client))["gamma"]

    assert gamma["status"] is None
    assert gamma["status_since"] is None
    assert gamma["last_seen"] == "2026-12-07T08:00:00+00:00"
    assert gamma["registered"] is False


async def test_dashboard_status_badges_english(client: httpx.AsyncClient) -> None:
    html = await dashboard(client, "en")

    assert '<span class="badge online">online</span>' in html
    assert "since 2026-12-07 07:00" in html
    assert '<span class="badge offline">offline</span>' in html
    assert "since 2026-12-07 08:00" in html
    assert '<span class="badge unknown">connection status unknown</span>' in html
    assert "last seen 2026-12-07 09:00" in html


async def test_dashboard_status_badges_polish(client: httpx.AsyncClient) -> None:
    html = await dashboard(client, "pl")

    assert '<span class="badge online">połączony</span>' in html
    assert "od 07.12.2026 07:00" in html
    assert '<span class="badge offline">rozłączony</span>' in html
    assert '<span class="badge unknown">stan połączenia nieznany</span>' in html
    assert "ostatnio widziany 07.12.2026 09:00" in html


async def test_dashboard_offline_member_without_offers(client: httpx.AsyncClient) -> None:
    members = await dashboard(client, "en")
    english = await dashboard(client, "en", "/members/pomorskie-metal/beta")
    polish = await dashboard(client, "pl", "/members/pomorskie-metal/beta")

    assert "pomorskie-metal/beta" in members
    assert '<span class="badge offline">offline</span>' in english
    assert "This member has no current offers." in english
    assert "Ten członek nie ma teraz żadnych ofert." in polish


async def test_dashboard_hides_member_without_status_or_offers(sqlite_storage: Storage) -> None:
    sqlite_storage.register_member("pomorskie-metal", "silent", T0)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as opened:
        html = await dashboard(opened, "en")

    assert "silent" not in html
    assert "No members to show." in html
