"""Offer fields set by the owner's policy, in storage and the API: bands, prices, audience."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from kooperant.protocol import Amount, Band, Offer, Price, ResourceKind
from server.api import create_app
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage, Viewer
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, hours, machine_offer

ACME = Viewer("pomorskie-metal", "acme")


def banded_machine() -> Offer:
    return replace(
        machine_offer(),
        free_hours=None,
        free_hours_band=Band(20.0, 40.0),
        expires_at=T0 + hours(48),
        audience=("beta", "gamma"),
    )


def priced_supplies() -> Offer:
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource="blachy",
        kind=ResourceKind.SUPPLIES,
        generated_at=T0,
        amounts=(Amount("sheets", None, "pcs", band=Band(100.0, None)),),
        price=Price(42.5, "PLN", "sheet"),
        suppliers=("Huta Sp. z o.o.",),
        customers=("Stocznia SA", "Meble SA"),
    )


def test_band_and_expiry_round_trip(storage: Storage) -> None:
    storage.store_offer(banded_machine(), T0)

    record = storage.list_resources(ResourceQuery(), viewer=ACME, now=T0).items[0]

    assert record.free_hours is None
    assert record.free_hours_band == Band(20.0, 40.0)
    assert record.expires_at == T0 + hours(48)
    assert record.audience == ("beta", "gamma")


def test_window_keeps_band_without_hours(storage: Storage) -> None:
    storage.store_offer(banded_machine(), T0)

    page = storage.list_resources(
        ResourceQuery(window_start=T0, window_end=T0 + hours(2)), viewer=ACME, now=T0
    )

    record = page.items[0]
    assert record.free_hours is None
    assert record.free_hours_band == Band(20.0, 40.0)
    assert record.free_intervals[0].hours == pytest.approx(2.0)


def test_supplies_fields_round_trip(storage: Storage) -> None:
    storage.store_offer(priced_supplies(), T0)

    record = storage.list_resources(ResourceQuery(), now=T0).items[0]

    assert record.price == Price(42.5, "PLN", "sheet")
    assert record.suppliers == ("Huta Sp. z o.o.",)
    assert record.customers == ("Stocznia SA", "Meble SA")
    assert record.amounts == (
        {"quantity": "sheets", "band": {"min": 100.0, "max": None}, "unit": "pcs"},
    )
    assert record.audience is None


TOKENS = {"acme": "token-of-acme", "beta": "token-of-beta"}


@pytest.fixture
async def api(sqlite_storage: Storage, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    sqlite_storage.store_offer(banded_machine(), T0)
    sqlite_storage.store_offer(priced_supplies(), T0)
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(
        "".join(
            f"- {{cluster: pomorskie-metal, member: {member}, token_sha256: {hash_token(token)}}}\n"
            for member, token in TOKENS.items()
        )
    )
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(sqlite_storage, status, tokens=TokenStore.load(tokens_file), clock=lambda: T0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        yield client


async def items_for(api: httpx.AsyncClient, member: str) -> dict[str, dict[str, Any]]:
    response = await api.get(
        "/api/v1/resources", headers={"Authorization": f"Bearer {TOKENS[member]}"}
    )
    assert response.status_code == 200, response.text
    return {item["resource"]: item for item in response.json()["items"]}


async def test_api_shows_band_and_expiry(api: httpx.AsyncClient) -> None:
    item = (await items_for(api, "beta"))["cnc-5ax-01"]

    assert item["free_hours"] is None
    assert item["free_hours_band"] == {"min": 20.0, "max": 40.0}
    assert item["expires_at"] == "2026-12-09T06:00:00+00:00"
    assert item["price"] is None
    assert item["suppliers"] == []
    assert item["customers"] == []


async def test_api_shows_supplies_fields(api: httpx.AsyncClient) -> None:
    item = (await items_for(api, "beta"))["blachy"]

    assert item["price"] == {"value": 42.5, "currency": "PLN", "unit": "sheet"}
    assert item["suppliers"] == ["Huta Sp. z o.o."]
    assert item["customers"] == ["Stocznia SA", "Meble SA"]
    assert item["amounts"] == [
        {"quantity": "sheets", "band": {"min": 100.0, "max": None}, "unit": "pcs"}
    ]
    assert item["free_hours_band"] is None
    assert item["expires_at"] is None


async def test_audience_shown_to_owner_only(api: httpx.AsyncClient) -> None:
    owner = await items_for(api, "acme")
    other = await items_for(api, "beta")

    assert owner["cnc-5ax-01"]["audience"] == ["beta", "gamma"]
    assert owner["blachy"]["audience"] is None
    assert "audience" not in other["cnc-5ax-01"]
    assert "audience" not in other["blachy"]


async def test_dashboard_shows_bands(api: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['beta']}"}

    polish = (await api.get("/", headers=headers)).text
    english = (await api.get("/", params={"lang": "en"}, headers=headers)).text

    assert "20–40 h" in polish
    assert "arkusze ≥ 100 szt." in polish
    assert "20–40 h" in english
    assert "sheets ≥ 100 pcs" in english
