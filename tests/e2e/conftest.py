"""The browser the dashboard tests drive: Debian's Chromium through Playwright."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from server.broker import EmbeddedBroker
from server.service import ServerSettings, run_server

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
    """Chromium, or a skip (a failure when KOOPERANT_REQUIRE_SERVICES=1) where it is missing."""
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


@asynccontextmanager
async def serving(database: str, port: int, tokens_file: Path | None = None) -> AsyncIterator[str]:
    """Run an aggregator on ``database`` with an embedded broker; yield its URL on 127.0.0.1."""
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
            yield f"http://127.0.0.1:{port}"
        finally:
            stop.set()
            await server
