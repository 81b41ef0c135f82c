"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Screenshots of the Polish and English search pages go to the folder named by
``KOOPERANT_ARTIFACTS`` (``test-artifacts/`` in the repository by default).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from server.passwords import hash_password
from server.storage import Storage
from server.tokens import add_token
from tests.e2e.conftest import serving
from tests.server.helpers import machine_offer, storage_offer
from tests.server.search_helpers import add_profile

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "pomorskie-metal"
BETA_PASSWORD = "beta's dashboard password"


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("KOOPERANT_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def serve_dashboard(
    tmp_path: Path, port: int, tokens_file: Path | None = None, *, beta_account: bool = False
) -> AsyncIterator[str]:
    """Run an aggregator with offers of acme, one of them shared with beta only, and a profile.

    With ``beta_account``, member beta has a dashboard account, so every page needs sign-in.
    """
    database = f"sqlite:///{tmp_path / 'kooperant.db'}"
    storage = Storage(database)
    storage.migrate()
    received = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    storage.store_offer(machine_offer(), received)
    storage.store_offer(storage_offer(), received)
    laser = machine_offer(resource="laser-grupa", name="Laser grupowy", capabilities=("laser",))
    storage.store_offer(replace(laser, audience=("beta",)), received)
    add_profile(storage, CLUSTER, "acme", voivodeship="pomorskie", city="Gdańsk")
    if beta_account:
        storage.register_member(CLUSTER, "beta", received)
        storage.create_user(
            username="beta",
            password_hash=hash_password(BETA_PASSWORD),
            role="member",
            cluster=CLUSTER,
            member="beta",
            display_name="Beta sp. z o.o.",
            must_change_password=False,
            now=received,
        )
    storage.close()

    async with serving(database, port, tokens_file) as url:
        yield f"{url}/"


@pytest.fixture
async def dashboard_url(tmp_path: Path, free_port: int) -> AsyncIterator[str]:
    """An aggregator without a tokens file, so its pages are open."""
    async for url in serve_dashboard(tmp_path, free_port):
        yield url


@pytest.fixture
async def beta_account_url(tmp_path: Path, free_port: int) -> AsyncIterator[str]:
    """An aggregator where member beta signs in with a password."""
    async for url in serve_dashboard(tmp_path, free_port, beta_account=True):
        yield url


@pytest.fixture
def member_tokens(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "tokens.yaml"
    return {member: add_token(path, CLUSTER, member) for member in ("acme", "beta", "gamma")}


@pytest.fixture
async def secured_url(
    tmp_path: Path, free_port: int, member_tokens: dict[str, str]
) -> AsyncIterator[str]:
    """An aggregator with a tokens file that contains the tokens of acme, beta and gamma."""
    async for url in serve_dashboard(tmp_path, free_port, tmp_path / "tokens.yaml"):
        yield url


async def _result_texts(page: Page) -> list[str]:
    return await page.locator("#results tbody tr").all_inner_texts()


async def test_search_timeline_language_exports(
    browser: Browser, beta_account_url: str, artifacts: Path, tmp_path: Path
) -> None:
    dashboard_url = beta_account_url
    context = await browser.new_context(locale="pl-PL", accept_downloads=True)
    page = await context.new_page()

    await page.goto(dashboard_url)
    sign_in_url = page.url
    await page.get_by_label("Nazwa użytkownika").fill("beta")
    await page.get_by_label("Hasło").fill(BETA_PASSWORD)
    await page.get_by_role("button", name="Zaloguj").click()
    await page.wait_for_url(dashboard_url)
    signed_in = await page.locator("#signed-in").inner_text()
    await page.get_by_label("Możliwości").fill("5-axis-milling")
    await page.get_by_label("Wolne od dnia").fill("2026-12-08")
    await page.get_by_label("do dnia").fill("2026-12-08")
    await page.get_by_role("button", name="Szukaj").click()
    await page.wait_for_url("**capability=5-axis-milling**")
    polish_rows = await _result_texts(page)
    await page.screenshot(path=artifacts / "search-pl.png", full_page=True)

    async with page.expect_download() as csv_download:
        await page.locator("#export-csv").click()
    csv_path = tmp_path / "search.csv"
    await (await csv_download.value).save_as(csv_path)

    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**lang=en**")
    english_rows = await _result_texts(page)
    await page.screenshot(path=artifacts / "search-en.png", full_page=True)

    await page.locator("a.offer-link", has_text="DMU 50").click()
    await page.wait_for_selector("#offer-timeline")
    free_bars = await page.locator("#offer-timeline rect.free").count()
    ics_href = await page.locator("#ics-link").get_attribute("href")
    await page.screenshot(path=artifacts / "offer-en.png", full_page=True)
    assert ics_href is not None
    feed = await context.request.get(dashboard_url.rstrip("/") + ics_href)
    feed_text = await feed.text()

    assert "/login?next=" in sign_in_url
    assert signed_in == "Beta sp. z o.o."
    assert len(polish_rows) == 1
    assert "DMU 50" in polish_rows[0]
    assert "nie pracuje" in polish_rows[0]
    assert "08.12.2026" in polish_rows[0]
    assert "2,0 h" in polish_rows[0]
    assert len(english_rows) == 1
    assert "not executing" in english_rows[0]
    assert "2.0 h" in english_rows[0]
    assert await page.locator("html").get_attribute("lang") == "en"
    assert free_bars == 2
    assert csv_path.read_bytes().startswith("\ufeffklaster;członek".encode())
    assert "cnc-5ax-01" in csv_path.read_text(encoding="utf-8-sig")
    assert feed.status == 200
    assert feed_text.count("BEGIN:VEVENT") == 2
    assert (artifacts / "search-pl.png").stat().st_size > 0
    assert (artifacts / "search-en.png").stat().st_size > 0
    await context.close()


async def test_search_follows_browser_language(browser: Browser, dashboard_url: str) -> None:
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()

    await page.goto(dashboard_url)

    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.locator("h1").inner_text() == "Search free capacity"
    await context.close()


async def test_invalid_search_shows_message(browser: Browser, dashboard_url: str) -> None:
    page = await browser.new_page(locale="pl-PL")

    response = await page.goto(dashboard_url + "?from=2026-12-10&to=2026-12-01")

    assert response is not None
    assert response.status == 400
    assert (
        "Data końcowa 2026-12-01 jest wcześniejsza"
        in await page.locator("#search-errors").inner_text()
    )


async def test_member_pages_and_audience(
    browser: Browser, secured_url: str, member_tokens: dict[str, str]
) -> None:
    contexts = {
        member: await browser.new_context(
            locale="pl-PL", extra_http_headers={"Authorization": f"Bearer {token}"}
        )
        for member, token in member_tokens.items()
    }
    stranger = await browser.new_context(locale="pl-PL")
    beta_page = await contexts["beta"].new_page()
    gamma_page = await contexts["gamma"].new_page()
    stranger_page = await stranger.new_page()

    await beta_page.goto(secured_url)
    beta_rows = await _result_texts(beta_page)
    await beta_page.get_by_role("link", name="Członkowie").click()
    await beta_page.wait_for_selector("#members")
    members = await beta_page.locator("#members tbody tr").all_inner_texts()
    await gamma_page.goto(secured_url + "?capability=laser")
    gamma_text = await gamma_page.locator("main").inner_text()
    await stranger_page.goto(secured_url + "?capability=laser")

    assert any("Laser grupowy" in row for row in beta_rows), beta_rows
    assert any("DMU 50" in row for row in beta_rows), beta_rows
    assert any("Firma acme" in row and "Gdańsk" in row for row in members), members
    assert "Znalezione oferty: 0" in gamma_text
    assert "Laser grupowy" not in gamma_text
    assert "/login?next=%2F%3Fcapability%3Dlaser" in stranger_page.url
    assert "Laser grupowy" not in await stranger_page.content()
    for context in (*contexts.values(), stranger):
        await context.close()
