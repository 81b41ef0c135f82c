"""The publisher's delivery against its own brokers: outages, sessions, status, ACL and TLS."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.audit import AuditLog
from agent.config import BrokerSettings
from agent.outbox import Outbox, OutboxLimits
from agent.publisher import Publisher
from kooperant.mqtt import (
    ConnectOptions,
    MqttError,
    MqttSession,
    ReceivedMessage,
    TlsSettings,
)
from kooperant.net import free_tcp_port
from kooperant.protocol import (
    MemberState,
    Offer,
    OfflineReason,
    ResourceKind,
    offer_topic,
    parse_status,
    status_topic,
)
from tests.support.certificates import CertificateAuthority
from tests.support.mosquitto import OwnMosquitto, TlsFiles

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CLUSTER = "delivery-test"
MEMBER = "acme"


def offer(resource: str, free_hours: float) -> Offer:
    return Offer(CLUSTER, MEMBER, resource, ResourceKind.MACHINE, NOW, free_hours=free_hours)


def make_broker(folder: Path, **settings: Any) -> OwnMosquitto:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return OwnMosquitto(folder, **settings)
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    broker = make_broker(tmp_path / "broker", persistence=True)
    try:
        yield broker
    finally:
        broker.stop()


def make_publisher(
    url: str,
    log: AuditLog,
    *,
    clock: Callable[[], datetime] = lambda: NOW,
    tls: TlsSettings | None = None,
    password: str | None = None,
) -> Publisher:
    settings = BrokerSettings(
        url=url,
        username=None if password is None else MEMBER,
        password=password,
        reconnect_min_seconds=0.05,
        reconnect_max_seconds=0.2,
    )
    return Publisher(
        settings,
        f"kooperant-agent-{MEMBER}",
        cluster=CLUSTER,
        member=MEMBER,
        audit_log=log,
        outbox=Outbox(log.path),
        tls=tls,
        clock=clock,
        poll_seconds=0.05,
    )


@asynccontextmanager
async def running(publisher: Publisher) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        assert publisher.outbox is not None
        publisher.outbox.close()


async def settle(condition: Callable[[], bool], max_seconds: float = 10.0) -> None:
    """Wait until ``condition`` holds; it is checked every 20 ms, because nothing signals it."""
    async with asyncio.timeout(max_seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def settle_queued(outbox: Outbox, count: int) -> None:
    await settle(lambda: len(outbox.queued()) == count)


class Collector:
    """A subscriber with a kept session that reconnects, as the aggregator does."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.options = ConnectOptions(
            host="127.0.0.1",
            port=port,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            clean_start=False,
            session_expiry_seconds=300,
        )
        self.topic_filter = topic_filter
        self.messages: list[ReceivedMessage] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with MqttSession(self.options) as session:
                    if not session.session_present:
                        await session.subscribe([self.topic_filter])
                    async for message in session.messages():
                        self.messages.append(message)
            except MqttError:
                await asyncio.sleep(0.05)

    def envelopes(self) -> list[tuple[str, str, int]]:
        """Return (topic, message id, seq) of each offer received, repeats left out."""
        seen: set[str] = set()
        result = []
        for message in self.messages:
            if not message.payload or message.topic.endswith("/status"):
                continue
            data = json.loads(message.payload)
            if data["message_id"] not in seen:
                seen.add(data["message_id"])
                result.append((message.topic, data["message_id"], data["seq"]))
        return result


@asynccontextmanager
async def collecting(port: int, topic_filter: str) -> AsyncIterator[Collector]:
    collector = Collector(port, topic_filter)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        yield collector
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def delivered_ids(log: AuditLog) -> set[str]:
    """Return the message id of every offer the audit log records as acknowledged."""
    return {
        json.loads(record.payload)["message_id"]
        for record in log.query(limit=1000)
        if record.payload
    }


async def test_broker_kill_loses_no_message(tmp_path: Path, own_broker: OwnMosquitto) -> None:
    own_broker.start()
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(own_broker.url, log)
        assert publisher.outbox is not None
        outbox = publisher.outbox
        async with (
            collecting(own_broker.port, f"kooperant/v1/{CLUSTER}/#") as collector,
            running(publisher),
        ):
            publisher.update([offer("cnc-1", 1.0), offer("cnc-2", 1.0)])
            await settle(lambda: publisher.published_messages == 2)

            own_broker.kill()
            await settle(lambda: not publisher.connected.is_set())
            for number, hours in enumerate((2.0, 3.0, 4.0, 5.0), start=1):
                publisher.update([offer("cnc-1", hours), offer("cnc-2", hours + 10)])
                # Each update is queued before the next, so none replaces another unsent.
                await settle_queued(outbox, 2 * number)
            queued_while_down = len(outbox.queued())

            own_broker.start()
            await settle(lambda: not outbox.queued())
            expected = delivered_ids(log)
            await settle(lambda: {item[1] for item in collector.envelopes()} == expected)
            received = collector.envelopes()

    assert queued_while_down == 8
    assert len(expected) == 10
    assert len(received) == 10
    for topic in (offer_topic(CLUSTER, MEMBER, "cnc-1"), offer_topic(CLUSTER, MEMBER, "cnc-2")):
        sequence = [seq for item_topic, _, seq in received if item_topic == topic]
        assert sequence == sorted(sequence), topic
        assert len(sequence) == 5


async def test_outage_keeps_retained_offer(
    tmp_path: Path, own_broker: OwnMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.publisher")
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(own_broker.url, log)
        async with running(publisher):
            publisher.update([offer("cnc-1", 10.0)])
            # No broker yet: the offer waits in the outbox and the publisher retries quietly.
            await settle(lambda: publisher.failed_attempts >= 1)
            own_broker.start()
            await settle(lambda: publisher.published_messages == 1)

            own_broker.stop()
            publisher.update([offer("cnc-1", 20.0)])
            await settle(lambda: not publisher.connected.is_set())
            own_broker.start()
            await settle(lambda: publisher.published_messages == 2)

        async with collecting(own_broker.port, offer_topic(CLUSTER, MEMBER, "cnc-1")) as late:
            await settle(lambda: len(late.messages) == 1)

    assert b'"free_hours":20.0' in late.messages[0].payload
    messages = [record.getMessage() for record in caplog.records]
    assert len([text for text in messages if "cannot be established" in text]) == 1
    assert len([text for text in messages if " lost " in text]) == 1
    assert len([text for text in messages if "restored" in text]) == 2


async def test_lost_session_requeues_offers(tmp_path: Path) -> None:
    # Without persistence the restarted broker has neither the session nor the retained offer.
    broker = make_broker(tmp_path / "broker")
    broker.start()
    try:
        with AuditLog(tmp_path / "audit.db") as log:
            publisher = make_publisher(broker.url, log)
            async with running(publisher):
                publisher.update([offer("cnc-1", 10.0)])
                await settle(lambda: publisher.published_messages == 1)
                broker.stop()
                await settle(lambda: not publisher.connected.is_set())
                broker.start()
                # The offer did not change, yet it is sent again.
                await settle(lambda: publisher.published_messages == 2)

            async with collecting(broker.port, offer_topic(CLUSTER, MEMBER, "cnc-1")) as late:
                await settle(lambda: len(late.messages) == 1)
    finally:
        broker.stop()

    assert b'"free_hours":10.0' in late.messages[0].payload


async def test_kept_session_sends_no_repeat(tmp_path: Path, own_broker: OwnMosquitto) -> None:
    own_broker.start()
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(own_broker.url, log)
        async with running(publisher):
            publisher.update([offer("cnc-1", 10.0)])
            await settle(lambda: publisher.published_messages == 1)
            own_broker.stop()
            await settle(lambda: not publisher.connected.is_set())
            own_broker.start()
            await settle(publisher.connected.is_set)
            await asyncio.sleep(0.3)

    assert publisher.published_messages == 1


async def test_dropped_withdrawal_queued_again(tmp_path: Path, own_broker: OwnMosquitto) -> None:
    own_broker.start()
    first = offer_topic(CLUSTER, MEMBER, "cnc-1")
    second = offer_topic(CLUSTER, MEMBER, "cnc-2")
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(own_broker.url, log)
        assert publisher.outbox is not None
        publisher.outbox.close()
        outbox = Outbox(log.path, OutboxLimits(max_bytes=1000))
        publisher.outbox = outbox
        async with running(publisher):
            publisher.update([offer("cnc-1", 1.0)])
            await settle(lambda: publisher.published_messages == 1)
            own_broker.kill()
            await settle(lambda: not publisher.connected.is_set())

            # cnc-1 is taken back, then offers of cnc-2 push its clear out of the full queue.
            for hours in range(1, 8):
                publisher.update([offer("cnc-2", float(hours))], settled=True)
                await settle_payload(outbox, second, hours)
            await settle(lambda: outbox.dropped_messages >= 3)
            await settle(lambda: outbox.latest_payloads().get(first) == b"")

            own_broker.start()
            await settle(lambda: not outbox.queued())

        async with collecting(own_broker.port, f"kooperant/v1/{CLUSTER}/+/offers/+") as late:
            await settle(lambda: len(late.messages) == 1)

    assert [message.topic for message in late.messages] == [second]


async def settle_payload(outbox: Outbox, topic: str, free_hours: int) -> None:
    def queued() -> bool:
        payload = outbox.latest_payloads().get(topic)
        return payload is not None and json.loads(payload)["free_hours"] == free_hours

    await settle(queued)


async def test_refresh_skips_queued_offer(tmp_path: Path) -> None:
    unreachable = f"mqtt://127.0.0.1:{free_tcp_port()}"
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(unreachable, log)
        assert publisher.outbox is not None
        outbox = publisher.outbox
        async with running(publisher):
            publisher.update([offer("cnc-1", 1.0)])
            await settle_queued(outbox, 1)
            for _ in range(3):
                # The runner's periodic republish while the broker is down.
                publisher.update([offer("cnc-1", 1.0)], full=True)
                await asyncio.sleep(0.1)
            unchanged = len(outbox.queued())
            publisher.update([offer("cnc-1", 2.0)], full=True)
            await settle_queued(outbox, 2)

    assert unchanged == 1


async def test_status_online_then_stopped(tmp_path: Path, own_broker: OwnMosquitto) -> None:
    own_broker.start()
    topic = status_topic(CLUSTER, MEMBER)
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(own_broker.url, log, clock=lambda: datetime.now(UTC))
        async with collecting(own_broker.port, topic) as collector:
            async with running(publisher):
                await settle(lambda: len(collector.messages) == 1)
            await settle(lambda: len(collector.messages) == 2)
        async with collecting(own_broker.port, topic) as late:
            await settle(lambda: len(late.messages) == 1)
        audit_rows = log.count()

    online, stopped = (parse_status(message.payload) for message in collector.messages)
    assert online.state is MemberState.ONLINE
    assert online.reason is None
    assert stopped.state is MemberState.OFFLINE
    assert stopped.reason is OfflineReason.STOPPED
    assert stopped.connected_at == online.connected_at
    # Retained: a subscriber that comes later still learns that the member stopped.
    assert late.messages[0].retain
    assert parse_status(late.messages[0].payload) == stopped
    assert audit_rows == 0


async def test_rejected_message_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    acl = tmp_path / "acl"
    allowed = offer_topic(CLUSTER, MEMBER, "cnc-1")
    acl.write_text(f"topic write {allowed}\ntopic write {status_topic(CLUSTER, MEMBER)}\n")
    broker = make_broker(tmp_path / "broker", acl_file=acl)
    broker.start()
    try:
        with AuditLog(tmp_path / "audit.db") as log:
            publisher = make_publisher(broker.url, log)
            assert publisher.outbox is not None
            outbox = publisher.outbox
            async with running(publisher):
                publisher.update([offer("cnc-2", 1.0), offer("cnc-1", 1.0)])
                await settle(lambda: publisher.published_messages == 1)
                await settle(lambda: not outbox.queued())
                status = publisher.outbox_status()
            recorded = [record.topic for record in log.query()]
    finally:
        broker.stop()

    assert publisher.rejected_messages == 1
    assert status is not None
    assert status.rejected_messages == 1
    assert recorded == [allowed]
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1
    assert offer_topic(CLUSTER, MEMBER, "cnc-2") in errors[0]
    assert "Not authorized" in errors[0]


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    """A broker that lets in only the member with the password ``right-password``."""
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), MEMBER, "right-password"],
        check=True,
        capture_output=True,
    )
    broker = make_broker(tmp_path / "broker", password_file=passwords)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_wrong_password_logged_once(
    tmp_path: Path, password_broker: OwnMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        publisher = make_publisher(password_broker.url, log, password="wrong-password")
        async with running(publisher):
            publisher.update([offer("cnc-1", 10.0)])
            # NOTE: an attempt now and then waits for the 10 s connect timeout after Mosquitto
            # rejects the password, hence the longer wait.
            await settle(lambda: publisher.failed_attempts >= 2, max_seconds=30)

    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert publisher.published_messages == 0
    assert len(errors) == 1
    address = f"127.0.0.1:{password_broker.port}"
    assert errors[0].startswith(
        f"MQTT broker {address} rejected client 'kooperant-agent-{MEMBER}' (user '{MEMBER}'): "
    )
    assert (
        "; check broker.username, broker.password and broker.tls in the agent config. "
        in (errors[0])
    )
    assert errors[0].count(address) == 1
    assert errors[0].count("(user ") == 1
    assert "wrong-password" not in errors[0]


async def test_tls_broker_receives_offer(tmp_path: Path) -> None:
    authority = CertificateAuthority.create(tmp_path / "pki")
    server = authority.issue_server()
    files = TlsFiles(authority.cert_file, server.cert_file, server.key_file)
    broker = make_broker(tmp_path / "broker", tls=files)
    broker.start()
    try:
        with AuditLog(tmp_path / "audit.db") as log:
            tls = TlsSettings(ca_file=authority.cert_file)
            publisher = make_publisher(broker.tls_url, log, tls=tls)
            async with running(publisher):
                publisher.update([offer("cnc-1", 10.0)])
                await settle(lambda: publisher.published_messages == 1)
            async with collecting(broker.port, offer_topic(CLUSTER, MEMBER, "cnc-1")) as late:
                await settle(lambda: len(late.messages) == 1)
    finally:
        broker.stop()

    assert b'"free_hours":10.0' in late.messages[0].payload


async def test_untrusted_tls_broker_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authority = CertificateAuthority.create(tmp_path / "pki")
    other = CertificateAuthority.create(tmp_path / "other", "other-ca")
    server = authority.issue_server()
    broker = make_broker(
        tmp_path / "broker", tls=TlsFiles(authority.cert_file, server.cert_file, server.key_file)
    )
    broker.start()
    try:
        with AuditLog(tmp_path / "audit.db") as log:
            publisher = make_publisher(
                broker.tls_url, log, tls=TlsSettings(ca_file=other.cert_file)
            )
            async with running(publisher):
                publisher.update([offer("cnc-1", 10.0)])
                await settle(lambda: publisher.failed_attempts >= 1)
    finally:
        broker.stop()

    assert publisher.published_messages == 0
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= 30]
    assert f"127.0.0.1:{broker.tls_port}" in warnings[0]
