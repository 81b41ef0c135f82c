"""An offer's ``accepts_requests`` from the payload to the resources row, the record and the API."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from kooperant.protocol import Offer, parse_offer
from server.api import create_app
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage, Viewer
from server.storage.tables import resources
from tests.server.helpers import T0, T1, machine_offer

BETA = Viewer("pomorskie-metal", "beta")


def received(offer: Offer, schema: str = "kooperant.offer/1.2") -> Offer:
    """Return ``offer`` as the aggregator parses it from a payload of ``schema``."""
    data = json.loads(offer.to_payload())
    data["schema"] = schema
    if schema != "kooperant.offer/1.2":
        del data["accepts_requests"]
    return parse_offer(json.dumps(data).encode())


def stored_flag(storage: Storage, resource: str) -> bool:
    with storage.engine.connect() as connection:
        value: bool = connection.execute(
            select(resources.c.accepts_requests).where(resources.c.resource == resource)
        ).scalar_one()
    return value


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        pytest.param(received(machine_offer(accepts_requests=True)), True, id="1.2-true"),
        pytest.param(received(machine_offer(accepts_requests=False)), False, id="1.2-false"),
        pytest.param(
            received(machine_offer(accepts_requests=True), "kooperant.offer/1.1"),
            False,
            id="1.1-absent",
        ),
    ],
)
def test_store_offer_keeps_accepts_requests(storage: Storage, offer: Offer, expected: bool) -> None:
    storage.store_offer(offer, T0)

    record = storage.get_resource("pomorskie-metal", "acme", "cnc-5ax-01", viewer=BETA, now=T0)
    listed = storage.list_resources(ResourceQuery(), viewer=BETA, now=T0).items

    assert stored_flag(storage, "cnc-5ax-01") is expected
    assert record is not None
    assert record.accepts_requests is expected
    assert [item.accepts_requests for item in listed] == [expected]


def test_newer_offer_switches_requests_off(storage: Storage) -> None:
    storage.store_offer(machine_offer(accepts_requests=True), T0)
    opened = stored_flag(storage, "cnc-5ax-01")

    storage.store_offer(machine_offer(generated_at=T1, accepts_requests=False), T1)
    closed = stored_flag(storage, "cnc-5ax-01")

    assert opened is True
    assert closed is False


async def test_api_shows_accepts_requests(sqlite_storage: Storage) -> None:
    sqlite_storage.store_offer(machine_offer(accepts_requests=True), T0)
    sqlite_storage.store_offer(machine_offer(resource="lathe-2"), T0)
    app = create_app(
        sqlite_storage, ServerStatus(broker_url="mqtt://127.0.0.1:1883"), clock=lambda: T0
    )

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://kooperant"
    ) as client:
        listed = (await client.get("/api/v1/resources")).json()["items"]
        single = (await client.get("/api/v1/resources/pomorskie-metal/acme/lathe-2")).json()

    flags = {item["resource"]: item["accepts_requests"] for item in listed}
    assert flags == {"cnc-5ax-01": True, "lathe-2": False}
    assert single["accepts_requests"] is False
