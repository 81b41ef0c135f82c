"""Ingest against Mosquitto on loopback: accepted offers, rejected messages, reconnects."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from kooperant.backoff import BackoffPolicy
from kooperant.protocol import offer_topic, withdrawal_topic
from server.broker import EmbeddedBroker
from server.ingest import Ingest, IngestSettings
from server.mqtt_url import BrokerAddress, parse_broker_url
from server.service import ServerSettings
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage
from tests.server.helpers import machine_offer, with_seq, withdrawal
from tests.server.ingest_helpers import (
    publisher,
    rejected,
    resources,
    running_ingest,
    true,
    wait_until,
)


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
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
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


@pytest.mark.mosquitto
async def test_ingest_stores_accepts_requests(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    current = machine_offer(cluster=cluster_id, accepts_requests=True)
    old_agent = json.loads(machine_offer(cluster=cluster_id, resource="lathe-2").to_payload())
    old_agent["schema"] = "kooperant.offer/1.1"
    del old_agent["accepts_requests"]

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        await publish(offer_topic(cluster_id, "acme", "cnc-5ax-01"), current.to_payload())
        await publish(offer_topic(cluster_id, "acme", "lathe-2"), json.dumps(old_agent).encode())

        async def arrived() -> bool:
            return len(await resources(api)) == 2

        await wait_until(arrived, "both offers stored")
        items = {item["resource"]: item for item in await resources(api)}

    assert items["cnc-5ax-01"]["accepts_requests"] is True
    assert items["lathe-2"]["accepts_requests"] is False
    assert status.rejected_messages == 0


@pytest.mark.mosquitto
async def test_redelivered_offer_counted_as_duplicate(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    payload = with_seq(machine_offer(cluster=cluster_id), 1).to_payload()
    topic = offer_topic(cluster_id, "acme", "cnc-5ax-01")

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, _),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        await publish(topic, payload)
        await publish(topic, payload)
        await wait_until(lambda: true(status.duplicate_messages == 1), "second copy handled")

    assert status.accepted_offers == 1
    assert sqlite_storage.count_history(cluster_id, "acme", "cnc-5ax-01") == 1


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
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
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
async def test_empty_payload_without_offer_rejects_nothing(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
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

    ingest = running_ingest(sqlite_storage, broker, "late-broker", fast, protocol="3.1.1")
    async with ingest as (status, api):
        await asyncio.sleep(0.3)
        assert not status.broker_connected
        assert status.broker_error
        health = await api.get("/healthz")
        assert health.status_code == 503
        assert health.json()["broker"].startswith("disconnected")

        async with EmbeddedBroker(port=free_port):
            await wait_until(lambda: true(status.broker_connected), "ingest connected")
            async with publisher(broker) as publish:
                offer = machine_offer(cluster="late-broker")
                await publish(offer_topic("late-broker", "acme", "cnc-5ax-01"), offer.to_payload())

                async def arrived() -> bool:
                    return len(await resources(api)) == 1

                await wait_until(arrived, "offer stored after the broker started")
            health = await api.get("/healthz")

        await wait_until(lambda: true(not status.broker_connected), "ingest saw the broker go")

    assert health.status_code == 200


async def test_handle_message_drops_other_cluster(sqlite_storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    settings = IngestSettings(broker=BrokerAddress("127.0.0.1", 1883), cluster="ours")
    ingest = Ingest(sqlite_storage, status, settings)
    other = machine_offer(cluster="theirs")

    await ingest.handle_message(offer_topic("theirs", "acme", "cnc-5ax-01"), other.to_payload())
    await ingest.handle_message("kooperant/v1/theirs/bad member/offers/x", b"{}")
    await ingest.handle_message("unrelated/topic", b"not an offer")
    await ingest.handle_message(
        withdrawal_topic("theirs", "acme", "cnc-5ax-01"),
        withdrawal(cluster="theirs").to_payload(),
    )

    assert status.dropped_messages == 4
    assert status.accepted_withdrawals == 0
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

            ingest = running_ingest(sqlite_storage, broker, "ours", protocol="3.1.1")
            async with ingest as (status, api):
                await wait_until(lambda: true(status.broker_connected), "ingest connected")
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


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("1" + "0" * 400, "in the payload is out of range"),
    ],
)
async def test_handle_message_rejects_bad_free_hours(
    sqlite_storage: Storage, token: str, reason: str
) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    ingest = Ingest(sqlite_storage, status, IngestSettings(broker=BrokerAddress("127.0.0.1", 1883)))
    text = machine_offer(cluster="c1").to_payload().decode()
    payload = text.replace('"free_hours":6.0', f'"free_hours":{token}').encode()
    assert payload != text.encode()

    await ingest.handle_message(offer_topic("c1", "acme", "cnc-5ax-01"), payload)

    assert status.rejected_messages == 1
    assert status.accepted_offers == 0
    assert reason in sqlite_storage.list_rejected()[0].reason
    assert sqlite_storage.list_resources(ResourceQuery()).items == ()
