"""The publisher takes back retained offers that are no longer permitted, against Mosquitto."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from agent.audit import AuditLog
from agent.config import BrokerSettings
from agent.outbox import Outbox
from agent.publisher import Publisher
from agent.withdrawals import WithdrawalNotice
from kooperant.protocol import (
    Offer,
    ResourceKind,
    WithdrawalReason,
    offer_topic,
    parse_withdrawal,
    withdrawal_topic,
)
from tests.support.mosquitto import OwnMosquitto

pytestmark = pytest.mark.mosquitto

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
MEMBER = "acme"


def offer(cluster: str, resource: str, kind: ResourceKind = ResourceKind.MACHINE) -> Offer:
    return Offer(cluster, MEMBER, resource, kind, NOW, free_hours=12.0)


def make_publisher(
    url: str,
    cluster: str,
    audit_log: AuditLog | None = None,
    unseen_grace_seconds: float = 0.0,
    *,
    folder: Path | None = None,
) -> Publisher:
    """Return a publisher whose outbox is in the audit log's file, or in ``folder``."""
    # No session is kept after the test, because the machine's broker is shared.
    settings = BrokerSettings(
        url=url, reconnect_min_seconds=0.05, reconnect_max_seconds=0.2, session_expiry_seconds=0
    )
    if audit_log is not None:
        path = audit_log.path
    else:
        assert folder is not None, "a publisher without an audit log needs a folder"
        path = folder / "outbox.db"
    return Publisher(
        settings,
        f"{cluster}-agent-{uuid.uuid4().hex[:6]}",
        cluster=cluster,
        member=MEMBER,
        audit_log=audit_log,
        outbox=Outbox(path),
        clock=lambda: NOW,
        unseen_grace_seconds=unseen_grace_seconds,
        poll_seconds=0.05,
    )


@asynccontextmanager
async def running(publisher: Publisher) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        assert publisher.outbox is not None
        publisher.outbox.close()


async def settle(condition: Callable[[], bool], max_seconds: float = 5.0) -> None:
    async with asyncio.timeout(max_seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def retained(port: int, cluster: str, *, status: bool = False) -> dict[str, bytes]:
    """Return the retained messages under the cluster, as a new subscriber receives them.

    Member status messages are left out unless ``status`` is set.
    """
    found: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(f"kooperant/v1/{cluster}/#", qos=1)
        try:
            async with asyncio.timeout(0.5):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    found[str(message.topic)] = message.payload
        except TimeoutError:
            pass
    if status:
        return found
    return {topic: payload for topic, payload in found.items() if not topic.endswith("/status")}


async def clear_cluster(port: int, cluster: str) -> None:
    leftovers = await retained(port, cluster, status=True)
    async with aiomqtt.Client("127.0.0.1", port) as client:
        for topic in leftovers:
            await client.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
async def broker_port(mosquitto_url: str, cluster_id: str) -> AsyncIterator[int]:
    yield 1883
    await clear_cluster(1883, cluster_id)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    try:
        broker = OwnMosquitto(tmp_path)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    # Persistence keeps retained messages across the restart, as a production broker would.
    with broker.config.open("a") as config:
        config.write(f"persistence true\npersistence_location {tmp_path}/\n")
    try:
        yield broker
    finally:
        broker.stop()


def withdrawal_data(payload: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload)
    return data


async def test_removed_offer_cleared_and_withdrawn(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    kept_topic = offer_topic(cluster_id, MEMBER, "cnc-1")
    removed = offer_topic(cluster_id, MEMBER, "cnc-2")
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "cnc-2")
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(mosquitto_url, cluster_id, log)
        async with running(publisher):
            publisher.update([offer(cluster_id, "cnc-1"), offer(cluster_id, "cnc-2")])
            await settle(lambda: publisher.published_messages == 2)
            publisher.update([offer(cluster_id, "cnc-1")])
            await settle(lambda: publisher.published_messages == 4)
        records = log.query()
        live = log.live_offer_topics(cluster_id, MEMBER)

    on_broker = await retained(broker_port, cluster_id)
    assert set(on_broker) == {kept_topic, withdrawal}
    sent = parse_withdrawal(on_broker[withdrawal])
    assert sent.resource == "cnc-2"
    assert sent.reason is WithdrawalReason.NOT_SHARED
    assert sent.withdrawn_at == NOW
    assert not sent.delete_history
    # Newest first: the withdrawal follows the clear of the offer topic.
    assert [(record.topic, record.payload == "") for record in records[:2]] == [
        (withdrawal, False),
        (removed, True),
    ]
    assert live == {kept_topic}


async def retain_two_offers(path: Path, url: str, cluster: str) -> None:
    """Publish offers of cnc-1 and cnc-2 as an earlier agent run that recorded them in ``path``."""
    with AuditLog(path) as log:
        first = make_publisher(url, cluster, log)
        async with running(first):
            first.update([offer(cluster, "cnc-1"), offer(cluster, "cnc-2")])
            await settle(lambda: first.published_messages == 2)


async def test_new_publisher_withdraws_from_audit_log(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    path = tmp_path / "audit.db"
    await retain_two_offers(path, mosquitto_url, cluster_id)

    with AuditLog(path) as log:
        second = make_publisher(mosquitto_url, cluster_id, log)
        async with running(second):
            second.update([offer(cluster_id, "cnc-1")])
            await settle(lambda: second.published_messages == 3)

    on_broker = await retained(broker_port, cluster_id)
    assert set(on_broker) == {
        offer_topic(cluster_id, MEMBER, "cnc-1"),
        withdrawal_topic(cluster_id, MEMBER, "cnc-2"),
    }


async def test_restart_keeps_unseen_offer_during_grace(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    path = tmp_path / "audit.db"
    await retain_two_offers(path, mosquitto_url, cluster_id)

    with AuditLog(path) as log:
        second = make_publisher(mosquitto_url, cluster_id, log, unseen_grace_seconds=60)
        async with running(second):
            # cnc-2 is not decided yet, as when its adapter has not connected after a restart.
            second.update([offer(cluster_id, "cnc-1")])
            await settle(lambda: second.published_messages == 1)
            await asyncio.sleep(0.5)
            unseen_offer_kept = second.published_messages == 1
            second.update(
                [offer(cluster_id, "cnc-1")],
                withdrawals={"cnc-2": WithdrawalNotice(WithdrawalReason.NOT_SHARED)},
            )
            await settle(lambda: second.published_messages == 3)

    assert unseen_offer_kept
    on_broker = await retained(broker_port, cluster_id)
    assert withdrawal_topic(cluster_id, MEMBER, "cnc-2") in on_broker
    assert offer_topic(cluster_id, MEMBER, "cnc-2") not in on_broker


async def test_grace_end_withdraws_unseen_offer(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    path = tmp_path / "audit.db"
    await retain_two_offers(path, mosquitto_url, cluster_id)

    with AuditLog(path) as log:
        second = make_publisher(mosquitto_url, cluster_id, log, unseen_grace_seconds=0.5)
        async with running(second):
            second.update([offer(cluster_id, "cnc-1")])
            # No further update comes: the publisher wakes itself when the grace period ends.
            await settle(lambda: second.published_messages == 3)

    on_broker = await retained(broker_port, cluster_id)
    assert offer_topic(cluster_id, MEMBER, "cnc-2") not in on_broker


async def test_settled_adapters_end_grace(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    path = tmp_path / "audit.db"
    await retain_two_offers(path, mosquitto_url, cluster_id)

    with AuditLog(path) as log:
        second = make_publisher(mosquitto_url, cluster_id, log, unseen_grace_seconds=600)
        async with running(second):
            second.update([offer(cluster_id, "cnc-1")], settled=True)
            await settle(lambda: second.published_messages == 3)

    on_broker = await retained(broker_port, cluster_id)
    assert offer_topic(cluster_id, MEMBER, "cnc-2") not in on_broker


async def test_reoffer_clears_retained_withdrawal(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    topic = offer_topic(cluster_id, MEMBER, "cnc-1")
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "cnc-1")
    seen: list[tuple[str, bool]] = []
    publisher = make_publisher(mosquitto_url, cluster_id, folder=tmp_path)
    async with (
        aiomqtt.Client("127.0.0.1", broker_port) as watcher,
        running(publisher),
    ):
        await watcher.subscribe(f"kooperant/v1/{cluster_id}/#", qos=1)
        publisher.update([offer(cluster_id, "cnc-1")])
        await settle(lambda: publisher.published_messages == 1)
        publisher.update([])
        await settle(lambda: publisher.published_messages == 3)
        publisher.update([offer(cluster_id, "cnc-1")])
        await settle(lambda: publisher.published_messages == 5)
        async with asyncio.timeout(5):
            async for message in watcher.messages:
                if str(message.topic).endswith("/status"):
                    continue
                seen.append((str(message.topic), bool(message.payload)))
                if len(seen) == 5:
                    break

    assert seen == [
        (topic, True),
        (topic, False),
        (withdrawal, True),
        (topic, True),
        (withdrawal, False),
    ]
    assert set(await retained(broker_port, cluster_id)) == {topic}


async def test_owner_withdrawal_carries_delete_history(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "frezarka")
    notice = WithdrawalNotice(WithdrawalReason.WITHDRAWN, delete_history=True)
    publisher = make_publisher(mosquitto_url, cluster_id, folder=tmp_path)
    async with running(publisher):
        publisher.update([offer(cluster_id, "frezarka")])
        await settle(lambda: publisher.published_messages == 1)
        publisher.update([], withdrawals={"frezarka": notice})
        await settle(lambda: publisher.published_messages == 3)

    on_broker = await retained(broker_port, cluster_id)
    assert set(on_broker) == {withdrawal}
    assert withdrawal_data(on_broker[withdrawal])["reason"] == "withdrawn"
    assert withdrawal_data(on_broker[withdrawal])["delete_history"] is True


async def test_owner_withdrawal_replaces_other_reason(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "cnc-1")
    publisher = make_publisher(mosquitto_url, cluster_id, folder=tmp_path)
    async with running(publisher):
        publisher.update([offer(cluster_id, "cnc-1")])
        await settle(lambda: publisher.published_messages == 1)
        publisher.update([])
        await settle(lambda: publisher.published_messages == 3)
        not_shared = (await retained(broker_port, cluster_id))[withdrawal]

        notice = WithdrawalNotice(WithdrawalReason.WITHDRAWN, delete_history=True)
        publisher.update([], withdrawals={"cnc-1": notice})
        await settle(lambda: publisher.published_messages == 4)
        publisher.update([], withdrawals={"cnc-1": notice})
        await asyncio.sleep(0.3)

    withdrawn = (await retained(broker_port, cluster_id))[withdrawal]
    assert withdrawal_data(not_shared)["reason"] == "not_shared"
    assert withdrawal_data(withdrawn)["reason"] == "withdrawn"
    assert withdrawal_data(withdrawn)["delete_history"] is True
    assert publisher.published_messages == 4


async def test_kept_kind_offer_stays_retained(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, broker_port: int
) -> None:
    machine = offer_topic(cluster_id, MEMBER, "cnc-1")
    publisher = make_publisher(mosquitto_url, cluster_id, folder=tmp_path)
    async with running(publisher):
        publisher.update(
            [offer(cluster_id, "cnc-1"), offer(cluster_id, "server-1", ResourceKind.IT_CAPACITY)]
        )
        await settle(lambda: publisher.published_messages == 2)
        publisher.update([], kept_kinds={ResourceKind.MACHINE})
        await settle(lambda: publisher.published_messages == 4)
        await asyncio.sleep(0.3)

    on_broker = await retained(broker_port, cluster_id)
    assert set(on_broker) == {machine, withdrawal_topic(cluster_id, MEMBER, "server-1")}
    assert publisher.published_messages == 4


async def test_withdrawal_waits_for_broker_return(tmp_path: Path, own_broker: OwnMosquitto) -> None:
    cluster = "restart-test"
    withdrawal = withdrawal_topic(cluster, MEMBER, "cnc-1")
    own_broker.start()
    publisher = make_publisher(own_broker.url, cluster, folder=tmp_path)
    async with running(publisher):
        publisher.update([offer(cluster, "cnc-1")])
        await settle(lambda: publisher.published_messages == 1)

        own_broker.stop()
        publisher.update([])
        # The publisher notices the lost connection when its next publish fails.
        await settle(lambda: not publisher.connected.is_set())
        unsent = publisher.published_messages
        own_broker.start()
        await settle(lambda: publisher.published_messages == 3)

    on_broker = await retained(own_broker.port, cluster)
    assert unsent == 1
    assert set(on_broker) == {withdrawal}
    assert parse_withdrawal(on_broker[withdrawal]).reason is WithdrawalReason.NOT_SHARED
