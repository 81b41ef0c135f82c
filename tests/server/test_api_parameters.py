"""Query parameters of the API: range limits and repeated values, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from server.api import MAX_OFFSET, create_app
from server.status import ServerStatus
from server.storage import Storage
from tests.server.helpers import T0, machine_offer, storage_offer


@pytest.fixture
async def api(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    storage.store_offer(machine_offer(), T0)
    storage.store_offer(storage_offer(member="beta"), T0)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        yield client


async def test_offset_at_maximum_gives_empty_page(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/api/v1/resources", params={"offset": str(MAX_OFFSET), "limit": "1000"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    assert response.json()["total"] == 2
    assert response.json()["offset"] == MAX_OFFSET


@pytest.mark.parametrize(
    ("url", "name", "value"),
    [
        ("/api/v1/resources", "offset", str(MAX_OFFSET + 1)),
        ("/api/v1/resources", "offset", "9" * 40),
        ("/api/v1/resources", "limit", "9" * 40),
        ("/api/v1/rejected-messages", "limit", str(MAX_OFFSET + 1)),
    ],
)
async def test_integer_beyond_range_is_422(
    api: httpx.AsyncClient, url: str, name: str, value: str
) -> None:
    response = await api.get(url, params={name: value})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert f"query parameter '{name}' value '{value}'" in error["message"]
    assert "less than or equal to" in error["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from", "0001-01-01T00:00:00+01:00"),
        ("to", "9999-12-31T23:59:59-01:00"),
    ],
)
async def test_time_beyond_utc_range_is_422(api: httpx.AsyncClient, name: str, value: str) -> None:
    response = await api.get("/api/v1/resources", params={name: value})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert f"query parameter '{name}' value '{value}' is out of range" in error["message"]


async def test_time_at_utc_limits_accepted(api: httpx.AsyncClient) -> None:
    params = {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}

    response = await api.get("/api/v1/resources", params=params)

    assert response.status_code == 200, response.text
    assert [item["resource"] for item in response.json()["items"]] == ["cnc-5ax-01"]


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (["machine"], ["cnc-5ax-01"]),
        (["storage"], ["hall-b"]),
        (["machine", "storage"], ["cnc-5ax-01", "hall-b"]),
        (["storage", "machine"], ["cnc-5ax-01", "hall-b"]),
        (["machine", "supplies"], ["cnc-5ax-01"]),
        (["supplies", "it_team"], []),
    ],
)
async def test_repeated_kind_matches_any(
    api: httpx.AsyncClient, kinds: list[str], expected: list[str]
) -> None:
    response = await api.get("/api/v1/resources", params={"kind": kinds})

    assert response.status_code == 200, response.text
    assert [item["resource"] for item in response.json()["items"]] == expected
    assert response.json()["total"] == len(expected)


async def test_repeated_kind_one_invalid_is_422(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/resources", params={"kind": ["machine", "spaceship"]})

    assert response.status_code == 422, response.text
    assert "query parameter 'kind' value 'spaceship'" in response.json()["error"]["message"]
