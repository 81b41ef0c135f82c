"""A running ingest with an API client, and a publisher that clears its retained topics."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx

from kooperant.backoff import BackoffPolicy
from server.api import create_app
from server.ingest import DEFAULT_RECONNECT, Ingest, IngestSettings
from server.mqtt_url import BrokerAddress
from server.settings import MqttProtocolChoice
from server.status import ServerStatus
from server.storage import Storage

WAIT_SECONDS = 5.0


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        # Polls because the conditions are read through the HTTP API, which has no event.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert await condition(), what


@asynccontextmanager
async def running_ingest(
    storage: Storage,
    broker: BrokerAddress,
    cluster: str,
    policy: BackoffPolicy | None = None,
    *,
    protocol: MqttProtocolChoice = "auto",
) -> AsyncIterator[tuple[ServerStatus, httpx.AsyncClient]]:
    """Run ingest on ``broker``; ``protocol="3.1.1"`` spares the embedded broker an MQTT 5 try."""
    status = ServerStatus(broker_url=broker.url)
    settings = IngestSettings(
        broker=broker,
        cluster=cluster,
        reconnect=policy or DEFAULT_RECONNECT,
        protocol=protocol,
        # Sessions this test leaves on the machine's broker end a minute after it.
        session_expiry_seconds=60,
    )
    ingest = Ingest(storage, status, settings, rng=random.Random(7))
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    transport = httpx.ASGITransport(app=create_app(storage, status))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as api:
            yield status, api
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task


@asynccontextmanager
async def publisher(
    broker: BrokerAddress,
) -> AsyncIterator[Callable[[str, bytes], Awaitable[None]]]:
    """A client that publishes retained messages and clears every topic it used on exit."""
    used: set[str] = set()
    async with aiomqtt.Client(broker.host, broker.port) as client:

        async def publish(topic: str, payload: bytes) -> None:
            used.add(topic)
            await client.publish(topic, payload, qos=1, retain=True)

        try:
            yield publish
        finally:
            for topic in used:
                await client.publish(topic, b"", qos=1, retain=True)


async def resources(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/resources")
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def rejected(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/rejected-messages")
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def true(value: bool) -> bool:
    return value
