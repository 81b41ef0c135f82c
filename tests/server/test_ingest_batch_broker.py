"""A burst of queued offers through a Mosquitto of the test's own, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import ConnectOptions, MqttSession
from kooperant.protocol import offer_topic
from server.ingest import Ingest, IngestSettings
from server.mqtt_url import parse_broker_url
from server.status import ServerStatus
from server.storage import OfferOutcome, OfferToStore, Storage
from tests.server.helpers import machine_offer, with_seq
from tests.support.mosquitto import OwnMosquitto, running

pytestmark = pytest.mark.mosquitto

MEMBERS = 5
OFFERS_PER_MEMBER = 400
# Storing 2,000 offers one transaction each took up to 80 s on a busy 2-core machine.
DRAIN_SECONDS = 300.0
FAST = BackoffPolicy(minimum=0.05, maximum=0.2)


async def wait_for(condition: Callable[[], bool], what: str, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            # Polls because ingest's counters have no event.
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


async def run_ingest(
    storage: Storage, url: str, cluster: str, until: Callable[[ServerStatus], bool]
) -> ServerStatus:
    """Run ingest with a persistent session until ``until(status)`` holds, then stop it."""
    broker = parse_broker_url(url)
    status = ServerStatus(broker_url=broker.url)
    settings = IngestSettings(broker=broker, cluster=cluster, reconnect=FAST)
    ingest = Ingest(storage, status, settings, rng=random.Random(5))
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    try:
        await wait_for(
            lambda: until(status) or task.done(), "ingest reached its state", DRAIN_SECONDS
        )
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task
    return status


async def publish_all(url: str, messages: Sequence[tuple[str, bytes]]) -> None:
    broker = parse_broker_url(url)
    options = ConnectOptions(host=broker.host, port=broker.port, client_id="burst-publisher")
    async with MqttSession(options) as session:
        for start in range(0, len(messages), 100):
            chunk = messages[start : start + 100]
            await asyncio.gather(
                *(session.publish(topic, payload, qos=1) for topic, payload in chunk)
            )


def spy_batches(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = storage.store_offers

    def recording(batch: Sequence[OfferToStore]) -> list[OfferOutcome]:
        sizes.append(len(batch))
        return original(batch)

    monkeypatch.setattr(storage, "store_offers", recording)
    return sizes


async def test_queued_burst_stored_completely(
    tmp_path: Path, storage: Storage, cluster_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mosquitto 2.0 queues at most 1,000 messages for an offline session (max_queued_messages).
    mosquitto = OwnMosquitto(tmp_path, extra_config="max_queued_messages 0\n")
    members = [f"member-{number}" for number in range(MEMBERS)]
    messages = [
        (
            offer_topic(cluster_id, member, f"cnc-{number}"),
            with_seq(
                machine_offer(cluster=cluster_id, member=member, resource=f"cnc-{number}"),
                1,
                f"{member}-{number}",
            ).to_payload(),
        )
        for number in range(OFFERS_PER_MEMBER)
        for member in members
    ]
    total = len(messages)
    sizes = spy_batches(storage, monkeypatch)

    with running(mosquitto):
        await run_ingest(storage, mosquitto.url, cluster_id, lambda status: status.broker_connected)
        await publish_all(mosquitto.url, messages)
        drained = await run_ingest(
            storage,
            mosquitto.url,
            cluster_id,
            lambda status: status.accepted_offers >= total,
        )
        # Every message was acknowledged, so a restart stores only the marker.
        marker = machine_offer(cluster=cluster_id, member="member-0", resource="marker")
        restarted = await run_ingest(
            storage, mosquitto.url, cluster_id, lambda status: status.broker_connected
        )
        await publish_all(
            mosquitto.url, [(offer_topic(cluster_id, "member-0", "marker"), marker.to_payload())]
        )
        after = await run_ingest(
            storage, mosquitto.url, cluster_id, lambda status: status.accepted_offers >= 1
        )

    assert drained.received_messages == total
    assert drained.accepted_offers == total
    assert drained.duplicate_messages == 0
    assert drained.rejected_messages == 0
    # NOTE: on a machine with a load of 15, a restart twice received 37 and 126 of the drained
    # offers again (Mosquitto 2.0.11, SQLite). The cause is not found, so the test only requires
    # such repeats to be duplicates.
    assert restarted.accepted_offers == 0
    assert restarted.duplicate_messages == restarted.received_messages
    assert after.accepted_offers == 1
    assert after.duplicate_messages == after.received_messages - 1
    for member in members:
        counts = [
            storage.count_history(cluster_id, member, f"cnc-{number}")
            for number in range(OFFERS_PER_MEMBER)
        ]
        assert counts == [1] * OFFERS_PER_MEMBER, member
    assert sum(sizes) >= total + 1
    assert max(sizes) > 1, "every offer was stored on its own"


async def test_session_receive_batch_takes_waiting(mosquitto_url: str, cluster_id: str) -> None:
    broker = parse_broker_url(mosquitto_url)
    options = ConnectOptions(host=broker.host, port=broker.port, client_id=f"batch-{cluster_id}")
    topics = [offer_topic(cluster_id, "acme", f"cnc-{number}") for number in range(30)]

    async with MqttSession(options) as session:
        await session.subscribe([f"kooperant/v1/{cluster_id}/+/offers/+"], qos=1)
        await publish_all(mosquitto_url, [(topic, b"x") for topic in topics])
        # Sleeps because the inbox has no public size; a second is ample on loopback.
        await asyncio.sleep(1.0)
        first = await asyncio.wait_for(session.receive_batch(10), 5)
        rest = await asyncio.wait_for(session.receive_batch(500), 5)

    assert [message.topic for message in first] == topics[:10]
    assert [message.topic for message in rest] == topics[10:]
