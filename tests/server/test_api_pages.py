"""Paging of /api/v1/members and /api/v1/rejected-messages, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kooperant.protocol import offer_topic
from server.api import MAX_OFFSET, create_app
from server.status import ServerStatus
from server.storage import Storage, Viewer
from server.tokens import TokenStore, add_token
from tests.server.helpers import T0, hours, machine_offer, member_status

MEMBERS = ("acme", "beta", "gamma", "delta")


def fill(storage: Storage) -> None:
    for member in MEMBERS:
        storage.store_status(member_status(member=member), T0)
    storage.store_status(member_status(cluster="other", member="omega"), T0)
    for index in range(5):
        topic = offer_topic("pomorskie-metal", "acme", f"broken-{index}")
        storage.store_rejected(topic, b"{}", f"reason {index}", T0 + hours(index))
    storage.store_rejected(offer_topic("pomorskie-metal", "beta", "x"), b"{}", "beta's", T0)


def app_client(storage: Storage, tokens: TokenStore | None = None) -> httpx.AsyncClient:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, tokens=tokens, clock=lambda: T0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kooperant")


@pytest.fixture
async def api(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    fill(storage)
    async with app_client(storage) as client:
        yield client


async def page(api: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    response = await api.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_members_first_page(api: httpx.AsyncClient) -> None:
    body = await page(api, "/api/v1/members", limit=2)

    assert body["total"] == 5
    assert body["limit"] == 2
    assert body["offset"] == 0
    assert [item["member"] for item in body["items"]] == ["omega", "acme"]


async def test_members_later_pages(api: httpx.AsyncClient) -> None:
    second = await page(api, "/api/v1/members", limit=2, offset=2)
    last = await page(api, "/api/v1/members", limit=2, offset=4)

    assert [item["member"] for item in second["items"]] == ["beta", "delta"]
    assert [item["member"] for item in last["items"]] == ["gamma"]
    assert last["total"] == 5


async def test_members_default_page(api: httpx.AsyncClient) -> None:
    body = await page(api, "/api/v1/members")

    assert body["limit"] == 100
    assert body["offset"] == 0
    assert len(body["items"]) == 5


async def test_rejected_pages_newest_first(api: httpx.AsyncClient) -> None:
    first = await page(api, "/api/v1/rejected-messages", limit=2)
    second = await page(api, "/api/v1/rejected-messages", limit=2, offset=2)

    assert first["total"] == 6
    assert [item["reason"] for item in first["items"]] == ["reason 4", "reason 3"]
    assert [item["reason"] for item in second["items"]] == ["reason 2", "reason 1"]
    assert second["offset"] == 2


async def test_rejected_default_limit(api: httpx.AsyncClient) -> None:
    body = await page(api, "/api/v1/rejected-messages")

    assert body["limit"] == 50
    assert body["total"] == len(body["items"]) == 6


@pytest.mark.parametrize("url", ["/api/v1/members", "/api/v1/rejected-messages"])
async def test_offset_at_maximum_is_empty(api: httpx.AsyncClient, url: str) -> None:
    body = await page(api, url, limit=1000, offset=MAX_OFFSET)

    assert body["items"] == []
    assert body["total"] > 0
    assert body["offset"] == MAX_OFFSET


@pytest.mark.parametrize("url", ["/api/v1/members", "/api/v1/rejected-messages"])
@pytest.mark.parametrize(
    ("name", "value"),
    [("offset", str(MAX_OFFSET + 1)), ("offset", "-1"), ("limit", "0"), ("limit", "1001")],
)
async def test_page_parameter_out_of_range(
    api: httpx.AsyncClient, url: str, name: str, value: str
) -> None:
    response = await api.get(url, params={name: value})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert f"query parameter '{name}' value '{value}'" in error["message"]
    assert error["details"][0]["parameter"] == name


async def test_member_totals_follow_visibility(storage: Storage, tmp_path: Path) -> None:
    fill(storage)
    storage.store_offer(machine_offer(cluster="other", member="omega"), T0)
    tokens_file = tmp_path / "tokens.yaml"
    token = add_token(tokens_file, "pomorskie-metal", "acme")
    headers = {"Authorization": f"Bearer {token}"}

    async with app_client(storage, TokenStore.load(tokens_file)) as api:
        members = (await api.get("/api/v1/members", params={"limit": 1}, headers=headers)).json()
        rejected = (await api.get("/api/v1/rejected-messages", headers=headers)).json()

    assert members["total"] == 4
    assert [item["member"] for item in members["items"]] == ["acme"]
    assert rejected["total"] == 5
    assert {item["topic"].split("/")[3] for item in rejected["items"]} == {"acme"}


def test_storage_member_page_of_new_member(storage: Storage) -> None:
    viewer = Viewer(cluster="pomorskie-metal", member="acme")

    result = storage.page_members(viewer=viewer, now=T0, limit=10, offset=0)

    assert result.total == 1
    assert [item.member for item in result.items] == ["acme"]
    assert result.items[0].first_seen is None
