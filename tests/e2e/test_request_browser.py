"""The request form and request pages in a real browser: Debian's Chromium driven by Playwright.

Member beta signs in, requests a slot of acme's machine in Polish and in English, gets the
translated error for a slot that is not free with the typed values kept, finds its requests on
``/requests`` and withdraws one. Screenshots go to the folder named by ``KOOPERANT_ARTIFACTS``
(``test-artifacts/`` in the repository by default).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page

from kooperant.intervals import Interval
from server.passwords import hash_password
from server.storage import Storage
from tests.e2e.conftest import serving
from tests.server.helpers import machine_offer
from tests.server.search_helpers import add_profile

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "pomorskie-metal"
BETA_PASSWORD = "beta's dashboard password"
WARSAW = ZoneInfo("Europe/Warsaw")
OFFER_PATH = f"/offers/{CLUSTER}/acme/cnc-5ax-01"


@dataclass(frozen=True)
class Site:
    url: str
    free: Interval
    """The first free interval of acme's machine, tomorrow from 06:00 UTC for 4 hours."""


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("KOOPERANT_ARTIFACTS") or REPO_ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def site(tmp_path: Path, free_port: int) -> AsyncIterator[Site]:
    """An aggregator with acme's machine free from tomorrow on, and beta's dashboard account.

    The server runs on the real clock, so the free intervals are placed after today.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    start = datetime.combine((now + timedelta(days=1)).date(), time(6, 0), tzinfo=UTC)
    free = (
        Interval(start, start + timedelta(hours=4)),
        Interval(start + timedelta(days=1), start + timedelta(days=1, hours=2)),
    )
    database = f"sqlite:///{tmp_path / 'kooperant.db'}"
    storage = Storage(database)
    storage.migrate()
    storage.store_offer(machine_offer(generated_at=now, free=free, accepts_requests=True), now)
    for member in ("acme", "beta"):
        storage.register_member(CLUSTER, member, now)
    add_profile(
        storage, CLUSTER, "beta", name="Beta sp. z o.o.", contact_email="biuro@beta.example"
    )
    storage.create_user(
        username="beta",
        password_hash=hash_password(BETA_PASSWORD),
        role="member",
        cluster=CLUSTER,
        member="beta",
        display_name="Beta sp. z o.o.",
        must_change_password=False,
        now=now,
    )
    storage.close()

    async with serving(database, free_port) as url:
        yield Site(url, free[0])


def local_fields(value: datetime) -> tuple[str, str]:
    """Return the date and time inputs' values of ``value`` in Warsaw time."""
    local = value.astimezone(WARSAW)
    return local.date().isoformat(), local.strftime("%H:%M")


async def fill_slot(page: Page, start: datetime, end: datetime) -> None:
    start_date, start_time = local_fields(start)
    end_date, end_time = local_fields(end)
    await page.locator("#start_date").fill(start_date)
    await page.locator("#start_time").fill(start_time)
    await page.locator("#end_date").fill(end_date)
    await page.locator("#end_time").fill(end_time)


async def sign_in_beta(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}{OFFER_PATH}")
    await page.locator("#username").fill("beta")
    await page.locator("#password").fill(BETA_PASSWORD)
    await page.locator("button[type=submit]").last.click()
    await page.wait_for_url(f"**{OFFER_PATH}")


async def test_request_form_pages_polish(browser: Browser, site: Site, artifacts: Path) -> None:
    context = await browser.new_context(locale="pl-PL")
    page = await context.new_page()
    await sign_in_beta(page, site)

    await page.locator("#free-intervals a").first.click()
    await page.wait_for_url("**start_date=**")
    filled_start = await page.locator("#start_time").input_value()
    filled_end = await page.locator("#end_time").input_value()
    await fill_slot(
        page, site.free.start + timedelta(hours=1), site.free.start + timedelta(hours=2)
    )
    prefilled_email = await page.get_by_label("E-mail").input_value()
    await page.get_by_label("Wiadomość do właściciela").fill("Frezowanie 40 detali")
    await page.get_by_label("Osoba do kontaktu").fill("Anna Nowak")
    await page.get_by_label("Telefon").fill("+48 58 123 45 67")
    await page.screenshot(path=artifacts / "request-form-pl.png", full_page=True)
    await page.get_by_role("button", name="Wyślij zapytanie").click()
    await page.wait_for_url("**/requests/**")
    sent_state = await page.locator("#request-state").inner_text()
    await page.screenshot(path=artifacts / "request-pl.png", full_page=True)

    await page.get_by_role("link", name="Zapytania", exact=True).click()
    await page.wait_for_selector("#requests-sent")
    listed = await page.locator("#requests-sent tbody tr").all_inner_texts()
    await page.screenshot(path=artifacts / "requests-pl.png", full_page=True)

    await page.goto(f"{site.url}{OFFER_PATH}")
    late_start = site.free.start + timedelta(hours=3)
    await fill_slot(page, late_start, late_start + timedelta(hours=2))
    await page.get_by_label("Wiadomość do właściciela").fill("Drugie zapytanie")
    await page.get_by_role("button", name="Wyślij zapytanie").click()
    await page.wait_for_selector("#error-slot")
    slot_error = await page.locator("#error-slot").inner_text()
    kept_end = await page.locator("#end_time").input_value()
    kept_message = await page.locator("#message").input_value()
    await page.screenshot(path=artifacts / "request-slot-taken-pl.png", full_page=True)

    await page.get_by_role("link", name="Zapytania", exact=True).click()
    await page.locator("#requests-sent tbody tr a").first.click()
    await page.get_by_role("button", name="Wycofaj zapytanie").click()
    await page.wait_for_selector("#request-state")
    withdrawn_state = await page.locator("#request-state").inner_text()
    withdraw_buttons = await page.locator("#withdraw").count()
    await page.screenshot(path=artifacts / "request-withdrawn-pl.png", full_page=True)

    assert filled_start == local_fields(site.free.start)[1]
    assert filled_end == local_fields(site.free.end)[1]
    assert prefilled_email == "biuro@beta.example"
    assert sent_state.startswith("wysłane")
    assert len(listed) == 1
    assert "wysłane" in listed[0]
    assert "acme/cnc-5ax-01" in listed[0]
    assert "Ten czas nie jest wolny" in slot_error
    assert kept_end == local_fields(late_start + timedelta(hours=2))[1]
    assert kept_message == "Drugie zapytanie"
    assert withdrawn_state.startswith("wycofane")
    assert withdraw_buttons == 0
    await context.close()


async def test_request_form_pages_english(browser: Browser, site: Site, artifacts: Path) -> None:
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()
    await sign_in_beta(page, site)

    await fill_slot(page, site.free.start, site.free.start + timedelta(hours=1))
    await page.get_by_label("Contact name").fill("Anna Nowak")
    await page.get_by_label("E-mail").fill("anna@beta.example")
    await page.get_by_role("button", name="Send request").click()
    await page.wait_for_url("**/requests/**")
    sent_state = await page.locator("#request-state").inner_text()

    await page.goto(f"{site.url}{OFFER_PATH}?lang=en")
    await fill_slot(page, site.free.end - timedelta(hours=1), site.free.end + timedelta(hours=1))
    await page.get_by_label("Message to the owner").fill("Second request")
    await page.get_by_role("button", name="Send request").click()
    await page.wait_for_selector("#error-slot")
    slot_error = await page.locator("#error-slot").inner_text()
    kept_message = await page.locator("#message").input_value()
    kept_email = await page.locator("#contact_email").input_value()
    await page.screenshot(path=artifacts / "request-slot-taken-en.png", full_page=True)

    await page.get_by_role("link", name="Requests", exact=True).click()
    await page.wait_for_selector("#requests-sent")
    listed = await page.locator("#requests-sent tbody tr").all_inner_texts()
    await page.screenshot(path=artifacts / "requests-en.png", full_page=True)

    assert sent_state.startswith("sent")
    assert "This time is not free; choose a time" in slot_error
    assert kept_message == "Second request"
    assert kept_email == "biuro@beta.example"
    assert len(listed) == 1
    assert "sent" in listed[0]
    assert await page.locator("html").get_attribute("lang") == "en"
    await context.close()
