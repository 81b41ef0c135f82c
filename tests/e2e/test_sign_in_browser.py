"""Password sign-in in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser

from server.auth import SESSION_COOKIE
from server.passwords import hash_password
from server.storage import Storage
from tests.e2e.conftest import serving
from tests.server.helpers import machine_offer

PASSWORD = "beta's browser password"


@pytest.fixture
async def accounts_url(tmp_path: Path, free_port: int) -> AsyncIterator[str]:
    """An aggregator without a tokens file but with the dashboard account of member beta."""
    database = f"sqlite:///{tmp_path / 'kooperant.db'}"
    storage = Storage(database)
    storage.migrate()
    received = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    storage.store_offer(machine_offer(), received)
    storage.store_offer(
        replace(machine_offer(resource="laser-grupa"), audience=("beta",)), received
    )
    storage.register_member("pomorskie-metal", "beta", received)
    storage.create_user(
        username="beta",
        password_hash=hash_password(PASSWORD),
        role="member",
        cluster="pomorskie-metal",
        member="beta",
        display_name="Beta sp. z o.o.",
        must_change_password=False,
        now=received,
    )
    storage.close()

    async with serving(database, free_port) as url:
        yield url


async def test_sign_in_form_then_sign_out(
    browser: Browser,
    accounts_url: str,
    tmp_path: Path,
) -> None:
    context = await browser.new_context(locale="pl-PL")
    page = await context.new_page()

    await page.goto(f"{accounts_url}/")
    form_url = page.url
    await page.get_by_label("Nazwa użytkownika").fill("Beta")
    await page.get_by_label("Hasło").fill(PASSWORD)
    await page.screenshot(path=tmp_path / "sign-in-pl.png", full_page=True)
    await page.get_by_role("button", name="Zaloguj").click()
    await page.wait_for_url(f"{accounts_url}/")
    offers = await page.locator("body").inner_text()
    cookies = await context.cookies()

    await page.goto(f"{accounts_url}/account/password")
    signed_in = await page.locator("#signed-in").inner_text()
    await page.screenshot(path=tmp_path / "signed-in-pl.png", full_page=True)
    await page.get_by_role("button", name="Wyloguj").click()
    await page.wait_for_url(f"{accounts_url}/login")
    await page.goto(f"{accounts_url}/")
    after_sign_out = page.url

    assert form_url == f"{accounts_url}/login?next=%2F"
    assert "laser-grupa" in offers
    assert [(cookie["name"], cookie["httpOnly"], cookie["sameSite"]) for cookie in cookies] == [
        (SESSION_COOKIE, True, "Lax")
    ]
    assert signed_in == "Beta sp. z o.o."
    assert after_sign_out == f"{accounts_url}/login?next=%2F"
    assert await context.cookies() == []
    assert (tmp_path / "signed-in-pl.png").stat().st_size > 0
    await context.close()


async def test_wrong_password_shows_error(
    browser: Browser,
    accounts_url: str,
) -> None:
    page = await browser.new_page(locale="en-GB")

    await page.goto(f"{accounts_url}/login")
    await page.get_by_label("User name").fill("beta")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    error = await page.get_by_role("alert").inner_text()

    assert error == "Invalid user name or password."
    assert "laser-grupa" not in await page.locator("body").inner_text()
