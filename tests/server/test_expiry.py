"""Expired offers: hidden from the API and the dashboard at once, deleted by the sweep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

import httpx
import pytest

from server.api import create_app
from server.service import sweep_expired
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage
from tests.server.helpers import T0, hours, machine_offer


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def api(storage: Storage, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    storage.store_offer(replace(machine_offer(), expires_at=T0 + hours(1)), T0)
    storage.store_offer(machine_offer(member="beta", resource="lasting"), T0)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(storage, status, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        yield client


async def views(api: httpx.AsyncClient) -> tuple[list[str], list[tuple[str, int]], str]:
    resources = (await api.get("/api/v1/resources")).json()
    members = (await api.get("/api/v1/members")).json()["items"]
    dashboard = (await api.get("/")).text
    return (
        [item["resource"] for item in resources["items"]],
        [(item["member"], item["resources"]) for item in members],
        dashboard,
    )


async def test_expired_offer_hidden_by_clock(api: httpx.AsyncClient, clock: Clock) -> None:
    before = await views(api)
    clock.now = T0 + hours(1)
    after = await views(api)

    assert before[0] == ["cnc-5ax-01", "lasting"]
    assert before[1] == [("acme", 1), ("beta", 1)]
    assert "cnc-5ax-01" in before[2]
    assert after[0] == ["lasting"]
    assert after[1] == [("beta", 1)]
    assert "cnc-5ax-01" not in after[2]
    assert "Znalezione oferty: 1" in after[2]


async def test_sweep_deletes_expired_rows(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer(), expires_at=T0 + hours(1)), T0)
    storage.store_offer(machine_offer(resource="lasting"), T0)
    stop = asyncio.Event()

    sweeper = asyncio.create_task(sweep_expired(storage, lambda: T0 + hours(2), 0.01, stop))
    async with asyncio.timeout(5):
        while storage.list_resources(ResourceQuery(), now=T0).total != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(sweeper, timeout=5)

    remaining = storage.list_resources(ResourceQuery(), now=T0)
    assert [item.resource for item in remaining.items] == ["lasting"]
    assert storage.count_history("pomorskie-metal", "acme", "cnc-5ax-01") == 1
