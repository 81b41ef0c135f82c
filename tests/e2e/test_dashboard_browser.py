"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from server.broker import EmbeddedBroker
from server.service import ServerSettings, run_server
from server.storage import Storage
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


@pytest.fixture
async def dashboard_url(tmp_path: Path, free_port: int) -> AsyncIterator[str]:
    """A running aggregator whose database already contains two offers of member acme."""
    database = f"sqlite:///{tmp_path / 'kooperant.db'}"
    storage = Storage(database)
    storage.migrate()
    received = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    storage.store_offer(machine_offer(), received)
    storage.store_offer(storage_offer(), received)
    storage.close()

    stop = asyncio.Event()
    ready = asyncio.Event()
    async with EmbeddedBroker(port=0) as broker:
        settings = ServerSettings(database=database, broker_url=broker.url, http_port=free_port)
        server = asyncio.create_task(run_server(settings, stop, ready))
        async with asyncio.timeout(20):
            await ready.wait()
        try:
            yield f"http://127.0.0.1:{free_port}/"
        finally:
            stop.set()
            await server


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
