"""Who may call /api/v1: anonymous callers in open mode, otherwise a bearer token or a session.

Each test runs the real application through httpx's ASGI transport on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from kooperant.protocol import offer_topic
from server.api import create_app
from server.auth import SESSION_COOKIE
from server.feed_links import FEED_KEY_NAME, signed_feed_path
from server.passwords import hash_password
from server.status import ServerStatus
from server.storage import Storage, Viewer
from server.storage.profiles import MemberProfile
from tests.server.helpers import T0, machine_offer

PASSWORDS = {"coord": "coordinator password 1", "beta": "beta's own password"}
BASE_URL = "http://kooperant"
PATH_VALUES = {"cluster": "c1", "member": "acme", "resource": "public-cnc"}


def fill(storage: Storage) -> None:
    storage.store_offer(machine_offer("c1", "acme", "public-cnc"), T0)
    storage.store_offer(replace(machine_offer("c1", "acme", "group-cnc"), audience=("beta",)), T0)
    storage.register_member("c1", "beta", T0)
    storage.save_profile(
        MemberProfile("c1", "acme", "Acme sp. z o.o.", contact_email="biuro@acme.example"), T0
    )
    storage.store_rejected(offer_topic("c1", "acme", "x"), b'{"secret": 1}', "invalid", T0)
    storage.store_rejected(offer_topic("c1", "beta", "y"), b"{}", "invalid", T0)
    storage.store_rejected(offer_topic("c2", "omega", "z"), b"{}", "invalid", T0)


def add_users(storage: Storage, *, beta_must_change: bool = False) -> None:
    storage.create_user(
        username="coord",
        password_hash=hash_password(PASSWORDS["coord"]),
        role="coordinator",
        cluster="c1",
        member=None,
        display_name=None,
        must_change_password=False,
        now=T0,
    )
    storage.create_user(
        username="beta",
        password_hash=hash_password(PASSWORDS["beta"]),
        role="member",
        cluster="c1",
        member="beta",
        display_name=None,
        must_change_password=beta_must_change,
        now=T0,
    )


def make_app(storage: Storage) -> FastAPI:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    return create_app(storage, status, clock=lambda: T0)


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


def api_paths(app: FastAPI) -> list[str]:
    """Return every GET route under /api/v1 with its path parameters filled in.

    The request routes read and write stored requests, so tests/server/test_requests_api.py
    checks their access instead.
    """
    paths = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/api/v1"):
            continue
        if route.path.startswith("/api/v1/requests"):
            continue
        assert "GET" in route.methods, route.path
        paths.append(re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES[match[1]], route.path))
    return sorted(paths)


@contextlib.asynccontextmanager
async def signed_in(app: FastAPI, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as client:
        response = await client.post(
            "/login", data={"username": username, "password": PASSWORDS[username], "next": "/"}
        )
        assert response.status_code == 303, response.text
        assert SESSION_COOKIE in client.cookies
        yield client


@pytest.fixture
async def app_with_accounts(storage: Storage) -> AsyncIterator[FastAPI]:
    fill(storage)
    add_users(storage)
    yield make_app(storage)


def test_api_routes_all_listed(app_with_accounts: FastAPI) -> None:
    paths = api_paths(app_with_accounts)

    assert "/api/v1/members/c1/acme" in paths
    assert "/api/v1/rejected-messages" in paths
    assert "/api/v1/resources.csv" in paths
    assert "/api/v1/resources/c1/acme/public-cnc/history" in paths
    assert "/api/v1/resources/c1/acme/public-cnc/slots.ics" in paths


async def test_anonymous_401_with_accounts(app_with_accounts: FastAPI) -> None:
    async with client_of(app_with_accounts) as client:
        for path in api_paths(app_with_accounts):
            response = await client.get(path)

            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized", path
            assert "sign in" in response.json()["error"]["message"], path
            assert "biuro@acme.example" not in response.text, path


async def test_unknown_cookie_401(app_with_accounts: FastAPI) -> None:
    async with client_of(app_with_accounts) as client:
        client.cookies.set(SESSION_COOKIE, "not-a-session")
        response = await client.get("/api/v1/members/c1/acme")

    assert response.status_code == 401
    assert "biuro@acme.example" not in response.text


async def test_bearer_without_tokens_file_401(app_with_accounts: FastAPI) -> None:
    async with client_of(app_with_accounts) as client:
        response = await client.get(
            "/api/v1/resources", headers={"Authorization": "Bearer guessed"}
        )

    assert response.status_code == 401
    assert "invalid API token" in response.json()["error"]["message"]


async def test_coordinator_session_reads_every_route(app_with_accounts: FastAPI) -> None:
    async with signed_in(app_with_accounts, "coord") as client:
        for path in api_paths(app_with_accounts):
            response = await client.get(path)

            assert response.status_code == 200, f"{path}: {response.text}"

        profile = (await client.get("/api/v1/members/c1/acme")).json()

    assert profile["contact_email"] == "biuro@acme.example"


async def test_member_session_sees_audience(app_with_accounts: FastAPI) -> None:
    async with signed_in(app_with_accounts, "beta") as client:
        resources = await client.get("/api/v1/resources")
        capacity = await client.get("/api/v1/stats/capacity")

    assert resources.status_code == 200
    assert {item["resource"] for item in resources.json()["items"]} == {"public-cnc", "group-cnc"}
    assert capacity.status_code == 403


async def test_must_change_password_403(storage: Storage) -> None:
    fill(storage)
    add_users(storage, beta_must_change=True)
    app = make_app(storage)

    async with signed_in(app, "beta") as client:
        response = await client.get("/api/v1/resources")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "password_change_required"
    assert "'beta'" in response.json()["error"]["message"]
    assert "/account/password" in response.json()["error"]["message"]


async def test_open_mode_anonymous_reads(storage: Storage) -> None:
    fill(storage)
    app = make_app(storage)

    async with client_of(app) as client:
        for path in api_paths(app):
            response = await client.get(path)

            assert response.status_code == 200, f"{path}: {response.text}"


async def test_signed_feed_link_needs_no_session(
    storage: Storage, app_with_accounts: FastAPI
) -> None:
    key = storage.secret(FEED_KEY_NAME)
    link = signed_feed_path(key, Viewer("c1", "beta"), "c1", "acme", "group-cnc")

    async with client_of(app_with_accounts) as client:
        response = await client.get(link)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")


async def test_rejected_coordinator_sees_cluster(app_with_accounts: FastAPI) -> None:
    async with signed_in(app_with_accounts, "coord") as client:
        response = await client.get("/api/v1/rejected-messages")

    topics = sorted(item["topic"] for item in response.json()["items"])
    assert topics == [offer_topic("c1", "acme", "x"), offer_topic("c1", "beta", "y")]


async def test_rejected_member_sees_own_topics(app_with_accounts: FastAPI) -> None:
    async with signed_in(app_with_accounts, "beta") as client:
        response = await client.get("/api/v1/rejected-messages")

    topics = [item["topic"] for item in response.json()["items"]]
    assert response.status_code == 200
    assert topics == [offer_topic("c1", "beta", "y")]
    assert "secret" not in response.text
