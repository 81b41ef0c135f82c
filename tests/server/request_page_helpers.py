"""A dashboard with offers of acme and accounts of beta, acme and a coordinator, for request pages.

acme's machine ``cnc-5ax-01`` is free 07:00–11:00 Warsaw time on 7 December 2026 (06:00–10:00
UTC) and again the next day. Its hall ``hall-b`` has 40 pallet places, and its ``secret-cnc`` is
shown to gamma only. The clock is at 06:00 Warsaw time that day.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

import httpx

from server.api import create_app
from server.passwords import hash_password
from server.status import ServerStatus
from server.storage import Storage
from tests.server.helpers import T0, hours, machine_offer, storage_offer
from tests.server.search_helpers import add_profile

CLUSTER = "pomorskie-metal"
NOW = T0 - hours(1)
PASSWORDS = {"beta": "beta's own password", "acme": "acme's own password", "coord": "coord pass 1"}
MACHINE_PATH = f"/offers/{CLUSTER}/acme/cnc-5ax-01"
HALL_PATH = f"/offers/{CLUSTER}/acme/hall-b"
HIDDEN_PATH = f"/offers/{CLUSTER}/acme/secret-cnc"


def fill(storage: Storage) -> None:
    """Store the offers, profiles and accounts this module's docstring describes."""
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    storage.store_offer(storage_offer(accepts_requests=True), NOW)
    hidden = replace(
        machine_offer(resource="secret-cnc", accepts_requests=True), audience=("gamma",)
    )
    storage.store_offer(hidden, NOW)
    add_profile(storage, CLUSTER, "beta", contact_email="anna@beta.example", name="Beta sp. z o.o.")
    for member in ("beta", "acme"):
        storage.register_member(CLUSTER, member, NOW)
    for username in ("beta", "acme", "coord"):
        storage.create_user(
            username=username,
            password_hash=hash_password(PASSWORDS[username]),
            role="coordinator" if username == "coord" else "member",
            cluster=CLUSTER,
            member=None if username == "coord" else username,
            display_name=None,
            must_change_password=False,
            now=NOW,
        )


def client_for(
    storage: Storage, requests_changed: asyncio.Event | None = None
) -> httpx.AsyncClient:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, clock=lambda: NOW, requests_changed=requests_changed)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kooperant")


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        "/login", data={"username": username, "password": PASSWORDS[username], "next": "/"}
    )
    assert response.status_code == 303, response.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


def machine_form(csrf_token: str, **changes: str) -> dict[str, str]:
    """Return the request form of the machine for 08:00–09:00 Warsaw time on 7 December."""
    form = {
        "csrf_token": csrf_token,
        "start_date": "2026-12-07",
        "start_time": "08:00",
        "end_date": "2026-12-07",
        "end_time": "09:00",
        "message": "Frezowanie 40 detali",
        "contact_name": "Anna Nowak",
        "contact_email": "anna@beta.example",
        "contact_phone": "",
        "expires_in_hours": "48",
    }
    form.update(changes)
    return form


async def send_machine_request(client: httpx.AsyncClient, **changes: Any) -> httpx.Response:
    """Post the machine's request form with the token of the offer page; return the response."""
    page = await client.get(MACHINE_PATH)
    return await client.post(
        f"{MACHINE_PATH}/request", data=machine_form(csrf_of(page.text), **changes)
    )
