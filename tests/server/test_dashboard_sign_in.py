"""The dashboard's token form: sign-in cookie, sign-out, and the open dashboard without tokens."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.api import create_app
from server.auth import COOKIE_NAME
from server.status import ServerStatus
from server.storage import Storage
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, machine_offer

TOKEN = "token-of-beta"


@pytest.fixture
def tokens(tmp_path: Path) -> TokenStore:
    path = tmp_path / "tokens.yaml"
    path.write_text(
        f"- {{cluster: pomorskie-metal, member: beta, token_sha256: {hash_token(TOKEN)}}}\n"
    )
    return TokenStore.load(path)


def make_client(
    storage: Storage, tokens: TokenStore | None, base_url: str = "http://kooperant"
) -> httpx.AsyncClient:
    storage.store_offer(machine_offer(resource="public-cnc"), T0)
    storage.store_offer(replace(machine_offer(resource="group-cnc"), audience=("beta",)), T0)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, tokens=tokens, clock=lambda: T0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def client(sqlite_storage: Storage, tokens: TokenStore) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(sqlite_storage, tokens) as opened:
        yield opened


async def test_page_without_token_redirects(client: httpx.AsyncClient) -> None:
    response = await client.get("/", params={"lang": "en"})

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Flang%3Den"


async def test_sign_in_sets_strict_cookie(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await client.post("/login", data={"token": TOKEN, "lang": "en"})

    cookie = response.headers["set-cookie"]
    assert response.status_code == 303
    assert response.headers["location"] == "./?lang=en"
    assert cookie.startswith(f"{COOKIE_NAME}={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie
    assert "Max-Age" not in cookie
    assert "Dashboard sign-in of member beta" in caplog.text
    assert TOKEN not in caplog.text


async def test_cookie_shows_member_view(client: httpx.AsyncClient) -> None:
    client.cookies.set(COOKIE_NAME, TOKEN)

    response = await client.get("/", params={"lang": "en"})

    assert response.status_code == 200
    assert "group-cnc" in response.text
    assert "public-cnc" in response.text


async def test_unknown_token_shows_form_again(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", data={"token": "token-of-nobody"})

    assert response.status_code == 401
    assert "Nieznany token" in response.text
    assert "set-cookie" not in response.headers
    assert "token-of-nobody" not in response.text


async def test_stale_cookie_redirects(client: httpx.AsyncClient) -> None:
    client.cookies.set(COOKIE_NAME, "token-revoked")

    response = await client.get("/")

    assert response.status_code == 303
    assert "group-cnc" not in response.text


async def test_sign_out_deletes_cookie(client: httpx.AsyncClient) -> None:
    await client.post("/login", data={"token": TOKEN})
    signed_in = await client.get("/")

    response = await client.post("/logout")
    signed_out = await client.get("/")

    assert signed_in.status_code == 200
    assert response.status_code == 303
    assert response.headers["location"] == "./"
    assert response.headers["set-cookie"].startswith(f'{COOKIE_NAME}="";')
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert signed_out.status_code == 303


@pytest.mark.parametrize(
    "body",
    [b"token=" + b"x" * 9000, b"&".join(b"f%d=1" % index for index in range(20)), b"lang=en"],
)
async def test_bad_sign_in_form_shows_form(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/login", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 401
    assert "set-cookie" not in response.headers


async def test_cookie_secure_over_https(sqlite_storage: Storage, tokens: TokenStore) -> None:
    async with make_client(sqlite_storage, tokens, "https://kooperant") as client:
        response = await client.post("/login", data={"token": TOKEN})

    assert "Secure" in response.headers["set-cookie"]


async def test_api_ignores_cookie(client: httpx.AsyncClient) -> None:
    client.cookies.set(COOKIE_NAME, TOKEN)

    response = await client.get("/api/v1/resources")

    assert response.status_code == 401


async def test_open_dashboard_without_tokens(sqlite_storage: Storage) -> None:
    async with make_client(sqlite_storage, None) as client:
        page = await client.get("/")
        sign_in = await client.post("/login", data={"token": "anything"})

    assert page.status_code == 200
    assert "public-cnc" in page.text
    assert "group-cnc" not in page.text
    assert "Zalogowano" not in page.text
    assert sign_in.status_code == 303
    assert "set-cookie" not in sign_in.headers


@pytest.mark.parametrize("path", ["/login", "/logout"])
async def test_cross_origin_form_rejected(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path, data={"token": TOKEN}, headers={"origin": "https://attacker.example"}
    )

    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_same_origin_sign_in_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/login", data={"token": TOKEN}, headers={"origin": "http://kooperant"}
    )

    assert response.status_code == 303
    assert response.headers["set-cookie"].startswith(f"{COOKIE_NAME}={TOKEN};")
