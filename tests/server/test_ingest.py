"""Ingest against Mosquitto on loopback: accepted offers, rejected messages, reconnects."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import pytest

from kooperant.backoff import BackoffPolicy
from kooperant.protocol import offer_topic
from server.api import create_app
from server.broker import EmbeddedBroker
from server.ingest import DEFAULT_RECONNECT, Ingest, IngestSettings
from server.mqtt_url import BrokerAddress, parse_broker_url
from server.service import ServerSettings
from server.status import ServerStatus
from server.storage import Storage
from tests.server.helpers import machine_offer

WAIT_SECONDS = 5.0


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        # Polls because the conditions are read through the HTTP API, which has no event.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert await condition(), what


@asynccontextmanager
async def running_ingest(
    storage: Storage, broker: BrokerAddress, cluster: str, policy: BackoffPolicy | None = None
) -> AsyncIterator[tuple[ServerStatus, httpx.AsyncClient]]:
    status = ServerStatus(broker_url=broker.url)
    settings = IngestSettings(broker=broker, cluster=cluster, reconnect=policy or DEFAULT_RECONNECT)
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


@pytest.mark.mosquitto
async def test_valid_offer_appears_in_api(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    offer = machine_offer(cluster=cluster_id)

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: _true(status.broker_connected), "ingest connected")
        await publish(offer_topic(cluster_id, "acme", "cnc-5ax-01"), offer.to_payload())

        async def arrived() -> bool:
            return len(await resources(api)) == 1

        await wait_until(arrived, "offer stored")
        item = (await resources(api))[0]

    assert item["cluster"] == cluster_id
    assert item["resource"] == "cnc-5ax-01"
    assert item["free_hours"] == pytest.approx(6.0)
    assert status.accepted_offers == 1
    assert status.rejected_messages == 0


def _schema_violation(cluster: str) -> bytes:
    data = machine_offer(cluster=cluster).to_json()
    data["free_hours"] = -3
    return json.dumps(data).encode()


def _wrong_schema(cluster: str) -> bytes:
    data = machine_offer(cluster=cluster).to_json()
    data["schema"] = "kooperant.offer/9"
    return json.dumps(data).encode()


@pytest.mark.mosquitto
async def test_bad_messages_are_rejected_and_ingest_goes_on(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    cases = {
        "not-json": (b"not json \xff", "not UTF-8"),
        "wrong-schema": (_wrong_schema(cluster_id), "unsupported schema 'kooperant.offer/9'"),
        "violation": (_schema_violation(cluster_id), "schema violation at free_hours"),
        "mismatch": (
            machine_offer(cluster=cluster_id, resource="cnc-5ax-01").to_payload(),
            f"payload is for cluster/member/resource '{cluster_id}/acme/cnc-5ax-01' "
            f"but the topic is for '{cluster_id}/acme/mismatch'",
        ),
    }

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: _true(status.broker_connected), "ingest connected")
        for resource, (payload, _) in cases.items():
            await publish(offer_topic(cluster_id, "acme", resource), payload)
        await publish(f"kooperant/v1/{cluster_id}/bad member/offers/x", b"{}")
        valid = machine_offer(cluster=cluster_id, resource="after-bad-ones")
        await publish(offer_topic(cluster_id, "acme", "after-bad-ones"), valid.to_payload())

        async def valid_arrived() -> bool:
            return [item["resource"] for item in await resources(api)] == ["after-bad-ones"]

        await wait_until(valid_arrived, "valid offer stored after the bad ones")
        reasons = {item["topic"]: item["reason"] for item in await rejected(api)}

    for resource, (_, reason) in cases.items():
        topic = offer_topic(cluster_id, "acme", resource)
        assert topic in reasons, f"no rejected message stored for {resource}"
        assert reason in reasons[topic]
    assert (
        "invalid member id 'bad member'"
        in reasons[f"kooperant/v1/{cluster_id}/bad member/offers/x"]
    )
    assert status.rejected_messages == 5
    assert status.accepted_offers == 1


@pytest.mark.mosquitto
async def test_empty_retained_payload_is_ignored(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: _true(status.broker_connected), "ingest connected")
        await publish(offer_topic(cluster_id, "acme", "cleared"), b"")
        marker = machine_offer(cluster=cluster_id, resource="marker")
        await publish(offer_topic(cluster_id, "acme", "marker"), marker.to_payload())

        async def marker_arrived() -> bool:
            return len(await resources(api)) == 1

        await wait_until(marker_arrived, "marker stored")
        rejected_items = await rejected(api)

    assert rejected_items == []
    assert status.rejected_messages == 0


def test_reconnect_policy_defaults() -> None:
    settings = IngestSettings(broker=BrokerAddress("127.0.0.1", 1883))

    assert settings.reconnect == BackoffPolicy(
        minimum=0.5, maximum=30.0, multiplier=2.0, jitter=0.2
    )
    assert ServerSettings().reconnect == settings.reconnect


async def test_ingest_connects_once_broker_starts(sqlite_storage: Storage, free_port: int) -> None:
    broker = BrokerAddress("127.0.0.1", free_port)
    fast = BackoffPolicy(minimum=0.05, maximum=0.2)

    async with running_ingest(sqlite_storage, broker, "late-broker", fast) as (status, api):
        await asyncio.sleep(0.3)
        assert not status.broker_connected
        assert status.broker_error
        health = await api.get("/healthz")
        assert health.status_code == 503
        assert health.json()["broker"].startswith("disconnected")

        async with EmbeddedBroker(port=free_port):
            await wait_until(lambda: _true(status.broker_connected), "ingest connected")
            async with publisher(broker) as publish:
                offer = machine_offer(cluster="late-broker")
                await publish(offer_topic("late-broker", "acme", "cnc-5ax-01"), offer.to_payload())

                async def arrived() -> bool:
                    return len(await resources(api)) == 1

                await wait_until(arrived, "offer stored after the broker started")
            health = await api.get("/healthz")

        await wait_until(lambda: _true(not status.broker_connected), "ingest saw the broker go")

    assert health.status_code == 200


async def _true(value: bool) -> bool:
    return value


async def test_handle_message_drops_other_cluster(sqlite_storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    settings = IngestSettings(broker=BrokerAddress("127.0.0.1", 1883), cluster="ours")
    ingest = Ingest(sqlite_storage, status, settings)
    other = machine_offer(cluster="theirs")

    await ingest.handle_message(offer_topic("theirs", "acme", "cnc-5ax-01"), other.to_payload())
    await ingest.handle_message("kooperant/v1/theirs/bad member/offers/x", b"{}")
    await ingest.handle_message("unrelated/topic", b"not an offer")

    assert status.dropped_messages == 3
    assert status.accepted_offers == 0
    assert status.rejected_messages == 0
    assert sqlite_storage.list_rejected() == []
    assert sqlite_storage.list_members() == []


async def test_handle_message_without_cluster_accepts_any(sqlite_storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    ingest = Ingest(sqlite_storage, status, IngestSettings(broker=BrokerAddress("127.0.0.1", 1883)))
    offer = machine_offer(cluster="any-cluster")

    await ingest.handle_message(
        offer_topic("any-cluster", "acme", "cnc-5ax-01"), offer.to_payload()
    )

    assert status.accepted_offers == 1
    assert status.dropped_messages == 0


async def test_embedded_broker_other_cluster_is_dropped(sqlite_storage: Storage) -> None:
    # On connect, amqtt 0.12 sends a client the retained messages that match any connected
    # client's filter, so the watcher's kooperant/v1/# brings ingest the other cluster's offer.
    async with EmbeddedBroker(port=0) as embedded:
        broker = BrokerAddress(embedded.host, embedded.port)
        async with (
            aiomqtt.Client(broker.host, broker.port) as watcher,
            publisher(broker) as publish,
        ):
            await watcher.subscribe("kooperant/v1/#")
            other = machine_offer(cluster="theirs")
            await publish(offer_topic("theirs", "acme", "cnc-5ax-01"), other.to_payload())

            async with running_ingest(sqlite_storage, broker, "ours") as (status, api):
                await wait_until(lambda: _true(status.broker_connected), "ingest connected")
                marker = machine_offer(cluster="ours", resource="marker")
                await publish(offer_topic("ours", "acme", "marker"), marker.to_payload())

                async def marker_arrived() -> bool:
                    return "marker" in [item["resource"] for item in await resources(api)]

                await wait_until(marker_arrived, "marker stored")
                items = await resources(api)
                rejected_items = await rejected(api)

    assert [item["cluster"] for item in items] == ["ours"]
    assert rejected_items == []
    assert status.dropped_messages == 1
