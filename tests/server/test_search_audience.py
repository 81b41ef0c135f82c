"""Audience on every search channel: member acme never reaches beta's offer meant for gamma.

Each channel gets a request that would match the restricted offer by its kind, capability,
region, minimum amount or own URL. Gamma, who is in the audience, sends the same request and
must get the offer, so a channel that hid everything would fail too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from kooperant.protocol import Amount
from server.feed_links import FEED_KEY_NAME, signed_feed_path
from server.storage import Storage, Viewer
from tests.server.helpers import T0, machine_offer, storage_offer
from tests.server.search_helpers import fill_search_cluster
from tests.server.test_search_pages import _tokens, client_for

SECRET_NAME = "Tajna-suwnica-xyz"
OUTSIDER = {"Authorization": "Bearer token-acme"}
INSIDER = {"Authorization": "Bearer token-gamma"}


@pytest.fixture
async def client(storage: Storage, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    fill_search_cluster(storage)
    secret = replace(
        machine_offer("c1", "beta", "secret-crane", name=SECRET_NAME, capabilities=("crane",)),
        audience=("gamma",),
    )
    secret_store = replace(
        storage_offer("c1", "beta", "secret-store"),
        name=SECRET_NAME,
        audience=("gamma",),
        amounts=(Amount("cold_places", 900.0, "pallets"),),
    )
    storage.store_offer(secret, T0)
    storage.store_offer(secret_store, T0)
    async with client_for(storage, _tokens(tmp_path)) as opened:
        yield opened


CHANNELS = [
    "/",
    "/?capability=crane",
    "/?kind=machine&region=slaskie",
    "/?min_free=800",
    "/?min_free=800&quantity=cold_places",
    "/export/search.csv?capability=crane",
    "/export/search.csv?region=slaskie",
    "/offers/c1/beta/secret-crane",
    "/offers/c1/beta/secret-crane.ics",
    "/offers/c1/beta/secret-crane/history.csv",
    "/members/c1/beta",
    "/api/v1/resources",
    "/api/v1/resources?capability=crane",
    "/api/v1/resources?region=slaskie&kind=machine",
    "/api/v1/resources?min_free=800&quantity=cold_places",
    "/api/v1/resources.csv?capability=crane",
    "/api/v1/resources/c1/beta/secret-crane",
    "/api/v1/resources/c1/beta/secret-crane/history",
    "/api/v1/resources/c1/beta/secret-crane/slots.ics",
]


@pytest.mark.parametrize("path", CHANNELS)
async def test_outsider_never_sees_restricted_offer(client: httpx.AsyncClient, path: str) -> None:
    outsider = await client.get(path, headers=OUTSIDER)
    insider = await client.get(path, headers=INSIDER)
    # Some channels have the id in the path. Their response must equal that for a missing offer.
    missing = await client.get(path.replace("secret-crane", "never-was"), headers=OUTSIDER)

    assert SECRET_NAME not in outsider.text
    assert "secret-store" not in outsider.text
    assert outsider.status_code in (200, 404)
    if "secret-crane" in path:
        assert outsider.status_code == 404
        assert outsider.text.replace("secret-crane", "never-was") == missing.text
    else:
        assert "secret-crane" not in outsider.text
    assert insider.status_code == 200
    # The history (JSON or CSV) has no name, but the one version's time.
    insider_marks = (SECRET_NAME, "BEGIN:VEVENT", "2026-12-07T06:00:00+00:00")
    assert any(mark in insider.text for mark in insider_marks)


async def test_feed_link_of_insider_useless_to_outsider(
    client: httpx.AsyncClient, storage: Storage
) -> None:
    key = storage.secret(FEED_KEY_NAME)
    insider_link = signed_feed_path(key, Viewer("c1", "gamma"), "c1", "beta", "secret-crane")
    outsider_link = signed_feed_path(key, Viewer("c1", "acme"), "c1", "beta", "secret-crane")

    insider = await client.get(insider_link)
    outsider = await client.get(outsider_link)

    assert insider.status_code == 200
    assert "BEGIN:VEVENT" in insider.text
    assert outsider.status_code == 404
    assert "VEVENT" not in outsider.text
