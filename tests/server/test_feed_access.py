"""Signed calendar feed links follow the dashboard accounts of the identity they were made for.

The accounts are those of ``test_dashboard_sign_in.fill``: coordinator ``coord`` without a member
and member account ``beta``. Acme's offer ``group-cnc`` has the audience ``beta`` and
``public-cnc`` is meant for the whole cluster. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.api import create_app
from server.feed_links import FEED_KEY_NAME, signed_feed_path
from server.status import ServerStatus
from server.storage import Storage, Viewer
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, machine_offer
from tests.server.test_dashboard_sign_in import (
    BETA_PASSWORD,
    Clocks,
    Site,
    fill,
    make_client,
    sign_in,
)
from tests.server.test_search_pages import _tokens

WRONG_SIGNATURE_BODY = "invalid or missing feed signature"


@pytest.fixture
async def site(storage: Storage) -> AsyncIterator[Site]:
    fill(storage)
    clocks = Clocks()
    async with make_client(storage, clocks) as client:
        yield Site(client, storage, clocks)


def feed_link(storage: Storage, viewer: Viewer, resource: str) -> str:
    return signed_feed_path(storage.secret(FEED_KEY_NAME), viewer, "c1", "acme", resource)


def add_account(storage: Storage, username: str, role: str, member: str | None) -> int:
    user = storage.create_user(
        username=username,
        password_hash="$argon2id$placeholder",
        role=role,
        cluster="c1",
        member=member,
        display_name=None,
        must_change_password=False,
        now=T0,
    )
    return user.id


def user_id(storage: Storage, username: str) -> int:
    user = storage.find_user(username)
    assert user is not None
    return user.id


async def test_feed_link_follows_disabled_account(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.search_routes")
    await sign_in(site.client, "beta", BETA_PASSWORD)
    page = await site.client.get("/offers/c1/acme/group-cnc")
    link = page.text.split('id="ics-link"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    link = link.replace("&amp;", "&")
    beta = user_id(site.storage, "beta")
    # A calendar program fetches the link without the session cookie.
    site.client.cookies.clear()

    before = await site.client.get(link)
    site.storage.disable_user(beta)
    disabled = await site.client.get(link)
    wrong_signature = await site.client.get(link.replace("sig=", "sig=0"))
    site.storage.enable_user(beta)
    enabled_again = await site.client.get(link)

    assert "viewer=c1%2Fbeta" in link
    assert before.status_code == 200
    assert "BEGIN:VEVENT" in before.text
    assert disabled.status_code == 403
    assert disabled.text == WRONG_SIGNATURE_BODY
    assert disabled.text == wrong_signature.text
    assert "account" not in disabled.text
    assert "viewer c1/beta of the link has no enabled dashboard account" in caplog.text
    assert "c1/acme/group-cnc" in caplog.text
    assert enabled_again.status_code == 200
    assert "BEGIN:VEVENT" in enabled_again.text


async def test_feed_link_with_one_account_disabled(site: Site) -> None:
    second = add_account(site.storage, "beta-2", "member", "beta")
    link = feed_link(site.storage, Viewer("c1", "beta"), "group-cnc")

    site.storage.disable_user(user_id(site.storage, "beta"))
    one_left = await site.client.get(link)
    site.storage.disable_user(second)
    none_left = await site.client.get(link)

    assert one_left.status_code == 200
    assert "BEGIN:VEVENT" in one_left.text
    assert none_left.status_code == 403


async def test_feed_link_kept_by_linked_coordinator(site: Site) -> None:
    add_account(site.storage, "beta-coordinator", "coordinator", "beta")
    link = feed_link(site.storage, Viewer("c1", "beta"), "group-cnc")

    site.storage.disable_user(user_id(site.storage, "beta"))
    response = await site.client.get(link)

    assert response.status_code == 200
    assert "BEGIN:VEVENT" in response.text


async def test_feed_link_of_member_without_account(site: Site) -> None:
    site.storage.register_member("c1", "gamma", T0)
    link = feed_link(site.storage, Viewer("c1", "gamma"), "public-cnc")

    response = await site.client.get(link)

    assert response.status_code == 403
    assert response.text == WRONG_SIGNATURE_BODY


async def test_feed_link_of_disabled_coordinator(site: Site) -> None:
    link = feed_link(site.storage, Viewer("c1", None, coordinator=True), "public-cnc")
    # A coordinator linked to a member does not keep a link of the cluster's coordinator alive.
    add_account(site.storage, "beta-coordinator", "coordinator", "beta")

    before = await site.client.get(link)
    site.storage.disable_user(user_id(site.storage, "coord"))
    after = await site.client.get(link)

    assert link.endswith("viewer=c1%2F")
    assert before.status_code == 200
    assert "BEGIN:VEVENT" in before.text
    assert after.status_code == 403
    assert after.text == WRONG_SIGNATURE_BODY


async def test_api_feed_ignores_disabled_account(storage: Storage, tmp_path: Path) -> None:
    fill(storage)
    storage.disable_user(user_id(storage, "beta"))
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, tokens=_tokens(tmp_path), clock=lambda: T0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        response = await client.get(
            "/api/v1/resources/c1/acme/group-cnc/slots.ics",
            headers={"Authorization": "Bearer token-beta"},
        )

    assert response.status_code == 200
    assert "BEGIN:VEVENT" in response.text


async def get_with_tokens(storage: Storage, tokens: TokenStore, link: str) -> httpx.Response:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, tokens=tokens, clock=lambda: T0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        return await client.get(link)


async def test_feed_link_kept_by_api_token(storage: Storage, tmp_path: Path) -> None:
    fill(storage)
    storage.disable_user(user_id(storage, "beta"))
    link = feed_link(storage, Viewer("c1", "beta"), "group-cnc")

    response = await get_with_tokens(storage, _tokens(tmp_path), link)

    assert response.status_code == 200
    assert "BEGIN:VEVENT" in response.text


async def test_feed_link_after_token_removed(storage: Storage, tmp_path: Path) -> None:
    # A tokens-only server: the offers of ``fill`` without its accounts, and beta's token gone.
    storage.store_offer(replace(machine_offer("c1", "acme", "group-cnc"), audience=("beta",)), T0)
    path = tmp_path / "tokens.yaml"
    path.write_text(f"- {{cluster: c1, member: acme, token_sha256: {hash_token('token-acme')}}}\n")
    link = feed_link(storage, Viewer("c1", "beta"), "group-cnc")

    response = await get_with_tokens(storage, TokenStore.load(path), link)

    assert response.status_code == 403
    assert response.text == WRONG_SIGNATURE_BODY
