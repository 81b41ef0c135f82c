"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from server.auth import COOKIE_NAME
from server.broker import EmbeddedBroker
from server.service import ServerSettings, run_server
from server.storage import Storage
from server.tokens import add_token
from tests.server.helpers import machine_offer, storage_offer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FOUND = Path(CHROMIUM).is_file()
# Without the networking flags Chromium tries to reach Google's hosts at every start.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_FOUND:
        reason = "Chromium not found; install Debian's chromium package"
        if os.environ.get("KOOPERANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def serve_dashboard(
    tmp_path: Path, port: int, tokens_file: Path | None = None
) -> AsyncIterator[str]:
    """Run an aggregator whose database contains two offers of acme and one for beta only."""
    database = f"sqlite:///{tmp_path / 'kooperant.db'}"
    storage = Storage(database)
    storage.migrate()
    received = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    storage.store_offer(machine_offer(), received)
    storage.store_offer(storage_offer(), received)
    group_offer = replace(machine_offer(resource="laser-grupa"), audience=("beta",))
    storage.store_offer(group_offer, received)
    storage.close()

    stop = asyncio.Event()
    ready = asyncio.Event()
    async with EmbeddedBroker(port=0) as broker:
        settings = ServerSettings(
            database=database,
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            http_port=port,
            tokens_file=tokens_file,
        )
        server = asyncio.create_task(run_server(settings, stop, ready))
        async with asyncio.timeout(20):
            await ready.wait()
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            stop.set()
            await server


@pytest.fixture
async def dashboard_url(tmp_path: Path, free_port: int) -> AsyncIterator[str]:
    """An aggregator without a tokens file, so its dashboard is open."""
    async for url in serve_dashboard(tmp_path, free_port):
        yield url


@pytest.fixture
def beta_token(tmp_path: Path) -> str:
    return add_token(tmp_path / "tokens.yaml", "pomorskie-metal", "beta")


@pytest.fixture
async def secured_url(tmp_path: Path, free_port: int, beta_token: str) -> AsyncIterator[str]:
    """An aggregator with a tokens file that contains the token of member beta."""
    async for url in serve_dashboard(tmp_path, free_port, tmp_path / "tokens.yaml"):
        yield url


async def test_dashboard_polish_then_english(
    browser: Browser, dashboard_url: str, tmp_path: Path
) -> None:
    page = await browser.new_page(locale="pl-PL")

    await page.goto(dashboard_url)
    polish_heading = await page.locator("h2").first.inner_text()
    polish_rows = await page.locator("tbody tr").all_inner_texts()
    await page.screenshot(path=tmp_path / "dashboard-pl.png", full_page=True)

    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**/?lang=en")
    english_rows = await page.locator("tbody tr").all_inner_texts()

    assert await page.locator("html").get_attribute("lang") == "en"
    assert polish_heading == "Członek acme (klaster pomorskie-metal)"
    assert any(
        "cnc-5ax-01" in row and "6,0 h" in row and "nie pracuje" in row for row in polish_rows
    ), polish_rows
    assert any("07.12.2026 07:00" in row for row in polish_rows), polish_rows
    assert any("hall-b" in row and "pallet_places 40,0 pallets" in row for row in polish_rows), (
        polish_rows
    )
    assert any(
        "cnc-5ax-01" in row and "6.0 h" in row and "not executing" in row for row in english_rows
    ), english_rows
    assert (tmp_path / "dashboard-pl.png").stat().st_size > 0


async def test_dashboard_follows_browser_language(browser: Browser, dashboard_url: str) -> None:
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()

    await page.goto(dashboard_url)

    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.locator("h1").inner_text() == "kooperant – free capacity in the cluster"
    await context.close()


async def test_dashboard_open_hides_group_offer(browser: Browser, dashboard_url: str) -> None:
    page = await browser.new_page(locale="pl-PL")

    await page.goto(dashboard_url)
    rows = await page.locator("tbody tr").all_inner_texts()

    assert any("cnc-5ax-01" in row for row in rows), rows
    assert not any("laser-grupa" in row for row in rows), rows


async def test_token_form_signs_member_in(
    browser: Browser, secured_url: str, beta_token: str, tmp_path: Path
) -> None:
    context = await browser.new_context(locale="pl-PL")
    page = await context.new_page()

    first = await page.goto(secured_url)
    form_heading = await page.locator("h2").inner_text()
    await page.get_by_label("Token").fill(beta_token)
    await page.get_by_role("button", name="Zaloguj").click()
    await page.wait_for_selector("#signed-in")
    signed_in = await page.locator("#signed-in").inner_text()
    rows = await page.locator("tbody tr").all_inner_texts()
    cookies = await context.cookies()
    await page.screenshot(path=tmp_path / "dashboard-signed-in.png", full_page=True)

    assert first is not None
    assert first.status == 401
    assert form_heading == "Logowanie tokenem"
    assert signed_in == "Zalogowano jako beta (klaster pomorskie-metal)"
    assert any("laser-grupa" in row for row in rows), rows
    assert any("cnc-5ax-01" in row for row in rows), rows
    assert [(cookie["name"], cookie["httpOnly"], cookie["sameSite"]) for cookie in cookies] == [
        (COOKIE_NAME, True, "Strict")
    ]
    await context.close()


async def test_token_cookie_shows_view_without_form(
    browser: Browser, secured_url: str, beta_token: str
) -> None:
    with_cookie = await browser.new_context(locale="en-GB")
    await with_cookie.add_cookies([{"name": COOKIE_NAME, "value": beta_token, "url": secured_url}])
    without_cookie = await browser.new_context(locale="en-GB")
    member_page = await with_cookie.new_page()
    stranger_page = await without_cookie.new_page()

    await member_page.goto(secured_url)
    await stranger_page.goto(secured_url)
    member_rows = await member_page.locator("tbody tr").all_inner_texts()
    stranger_text = await stranger_page.locator("body").inner_text()

    assert any("laser-grupa" in row for row in member_rows), member_rows
    assert await member_page.locator("input[name=token]").count() == 0
    assert await stranger_page.locator("input[name=token]").count() == 1
    assert "Sign in with a token" in stranger_text
    assert "laser-grupa" not in stranger_text
    assert "cnc-5ax-01" not in stranger_text

    await member_page.get_by_role("button", name="Sign out").click()
    await member_page.wait_for_selector("input[name=token]")
    assert await with_cookie.cookies() == []
    await with_cookie.close()
    await without_cookie.close()
