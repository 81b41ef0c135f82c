"""The search side of the API: new filters, one offer, its history, profiles and capacity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.storage import Storage
from tests.server.helpers import T0, hours, machine_offer
from tests.server.search_helpers import fill_search_cluster
from tests.server.test_search_pages import _tokens, client_for

TOKEN = {"Authorization": "Bearer token-acme"}


@pytest.fixture
async def api(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    fill_search_cluster(storage)
    for step in range(1, 4):
        later = replace(machine_offer("c1", "acme", "cnc"), generated_at=T0 - hours(step))
        storage.store_offer(later, T0)
    async with client_for(storage) as client:
        yield client


def _ids(response: httpx.Response) -> list[str]:
    return [item["resource"] for item in response.json()["items"]]


async def test_resources_new_filters(api: httpx.AsyncClient) -> None:
    by_region = await api.get("/api/v1/resources", params={"region": "slaskie"})
    by_city = await api.get("/api/v1/resources", params={"city": "GDAŃSK"})
    by_amount = await api.get(
        "/api/v1/resources", params={"min_free": "100", "quantity": "pallet_places"}
    )
    sorted_free = await api.get("/api/v1/resources", params={"sort": "free", "limit": "2"})

    assert _ids(by_region) == ["laser", "racks"]
    assert _ids(by_city) == ["cnc", "hall"]
    assert _ids(by_amount) == ["racks"]
    assert _ids(sorted_free) == ["racks", "hall"]
    assert sorted_free.json()["total"] == 5


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"region": "bavaria"}, "'region' value 'bavaria' is not a voivodeship code"),
        ({"sort": "price"}, "'sort' value 'price' is not one of"),
        ({"min_free": "-1"}, "min_free"),
        ({"min_free": "inf"}, "min_free"),
    ],
)
async def test_resources_bad_filter(
    api: httpx.AsyncClient, params: dict[str, str], fragment: str
) -> None:
    response = await api.get("/api/v1/resources", params=params)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert fragment in response.json()["error"]["message"]


async def test_one_resource_and_missing(api: httpx.AsyncClient) -> None:
    found = await api.get("/api/v1/resources/c1/beta/laser")
    missing = await api.get("/api/v1/resources/c1/beta/nothing")

    assert found.status_code == 200
    assert found.json()["name"] == "Beta laser"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_history_paginated(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/api/v1/resources/c1/acme/cnc/history", params={"limit": "2", "offset": "1"}
    )

    body = response.json()
    assert body["total"] == 4
    assert [item["generated_at"] for item in body["items"]] == [
        "2026-12-07T05:00:00+00:00",
        "2026-12-07T04:00:00+00:00",
    ]
    assert (body["limit"], body["offset"]) == (2, 1)


async def test_slots_ics(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/resources/c1/acme/cnc/slots.ics")

    assert response.status_code == 200
    assert response.text.count("BEGIN:VEVENT") == 2


async def test_member_profile(api: httpx.AsyncClient) -> None:
    found = await api.get("/api/v1/members/c1/acme")
    missing = await api.get("/api/v1/members/c1/gamma")

    assert found.json()["voivodeship"] == "pomorskie"
    assert found.json()["city"] == "Gdańsk"
    assert missing.status_code == 404


async def test_capacity_open_mode(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/stats/capacity", params={"days": "7"})

    assert response.status_code == 200
    assert response.json()["days"] == 7
    # cnc 6 h and laser 30 h; the press shows only a band, which the plot leaves out.
    assert response.json()["items"] == [{"day": "2026-12-07", "free_hours": 36.0, "offers": 2}]


async def test_capacity_forbidden_for_member(storage: Storage, tmp_path: Path) -> None:
    async with client_for(storage, _tokens(tmp_path)) as client:
        response = await client.get("/api/v1/stats/capacity", headers=TOKEN)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_profile_of_other_cluster_hidden(storage: Storage, tmp_path: Path) -> None:
    fill_search_cluster(storage, "c2")
    async with client_for(storage, _tokens(tmp_path)) as client:
        response = await client.get("/api/v1/members/c2/acme", headers=TOKEN)

    assert response.status_code == 404
