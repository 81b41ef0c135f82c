"""The API docs page in a real browser that may reach only the server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route

from tests.e2e.conftest import serving


@pytest.fixture
async def server_url(tmp_path: Path, free_port: int) -> AsyncIterator[str]:
    """An aggregator on SQLite with an embedded broker, serving HTTP on 127.0.0.1."""
    async with serving(f"sqlite:///{tmp_path / 'kooperant.db'}", free_port) as url:
        yield url


async def test_api_docs_render_offline(browser: Browser, server_url: str, tmp_path: Path) -> None:
    page = await browser.new_page()
    other_hosts: list[str] = []
    failed: list[str] = []
    page_errors: list[str] = []

    async def abort_other_hosts(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            other_hosts.append(route.request.url)
            await route.abort()

    await page.route("**/*", abort_other_hosts)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    # Chromium reports a Content-Security-Policy violation as this DOM event.
    await page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (event) => window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));"
    )

    response = await page.goto(f"{server_url}/api/docs")
    title = page.locator("#swagger-ui .info .title")
    operation = page.locator(".opblock-get", has_text="/api/v1/resources").first
    await operation.wait_for()
    await page.screenshot(path=tmp_path / "api-docs.png", full_page=True)

    assert response is not None
    assert response.status == 200
    assert (await title.inner_text()).startswith("kooperant aggregator")
    assert "Search the current offers" in await operation.inner_text()
    assert other_hosts == []
    assert failed == []
    assert page_errors == []
    assert await page.evaluate("window.cspViolations") == []
    await page.close()
