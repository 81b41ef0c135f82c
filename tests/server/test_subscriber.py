"""The aggregator's subscriber against real Mosquitto brokers: acks, sessions, groups and TLS."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import server.subscriber as subscriber_module
from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import ConnectOptions, MqttSession
from kooperant.protocol import (
    offer_subscription,
    offer_topic,
    status_subscription,
    withdrawal_subscription,
)
from server.broker import EmbeddedBroker
from server.errors import InvalidSettingError
from server.ingest import Ingest, IngestSettings
from server.mqtt_url import parse_broker_url
from server.service import ingest_settings, utc_now
from server.settings import ServerSettings
from server.status import ServerStatus
from server.storage import Storage
from server.subscriber import Subscriber, default_client_id, shared_filters
from tests.server.helpers import machine_offer
from tests.support.certificates import CertificateAuthority
from tests.support.mosquitto import OwnMosquitto, TlsFiles, running

WAIT_SECONDS = 10.0
FAST = BackoffPolicy(minimum=0.05, maximum=0.2)
# Sessions made on the machine's broker by these tests end a minute after the test.
TEST_SESSION_EXPIRY = 60

Received = list[tuple[str, bytes]]


def cluster_filters(cluster: str) -> list[str]:
    return [
        offer_subscription(cluster),
        withdrawal_subscription(cluster),
        status_subscription(cluster),
    ]


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds, polling because the subscriber's state has no event."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


def session_options(url: str, client_id: str, **changes: object) -> ConnectOptions:
    broker = parse_broker_url(url)
    settings: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "client_id": client_id,
        "clean_start": False,
        "session_expiry_seconds": TEST_SESSION_EXPIRY,
        "manual_ack": True,
    }
    settings.update(changes)
    return ConnectOptions(**settings)  # type: ignore[arg-type]


@asynccontextmanager
async def running_subscriber(
    options: ConnectOptions,
    cluster: str,
    handler: Callable[[str, bytes], Awaitable[None]],
    status: ServerStatus | None = None,
) -> AsyncIterator[tuple[ServerStatus, asyncio.Event, asyncio.Task[None]]]:
    """Run a ``Subscriber`` until the block ends, yielding its status, stop event and task."""
    status = status or ServerStatus(broker_url=f"mqtt://{options.address}")
    subscriber = Subscriber(
        options,
        cluster_filters(cluster),
        handler,
        status,
        reconnect=FAST,
        clock=utc_now,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(subscriber.run(stop))
    try:
        await wait_for(lambda: status.broker_connected or task.done(), "the subscriber connected")
        if task.done():
            task.result()
        yield status, stop, task
    finally:
        stop.set()
        async with asyncio.timeout(WAIT_SECONDS):
            await asyncio.gather(task, return_exceptions=True)


def recorder(received: Received) -> Callable[[str, bytes], Awaitable[None]]:
    async def record(topic: str, payload: bytes) -> None:
        received.append((topic, payload))

    return record


async def publish(url: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
    broker = parse_broker_url(url)
    options = ConnectOptions(host=broker.host, port=broker.port, client_id=f"pub-{id(payload)}")
    async with MqttSession(options) as session:
        await session.publish(topic, payload, qos=1, retain=retain)


async def forget_session(options: ConnectOptions) -> None:
    """Connect once with a clean start, so the broker drops the test's kept session."""
    clean = session_options(
        f"mqtt://{options.address}",
        options.client_id,
        clean_start=True,
        session_expiry_seconds=0,
        manual_ack=False,
        protocol=options.protocol,
    )
    async with MqttSession(clean):
        pass


def test_shared_filters_wraps_each_filter() -> None:
    filters = ("kooperant/v1/+/+/offers/+", "kooperant/v1/+/+/status")

    assert shared_filters(filters, None) == list(filters)
    assert shared_filters(filters, "workers") == [
        "$share/workers/kooperant/v1/+/+/offers/+",
        "$share/workers/kooperant/v1/+/+/status",
    ]


def test_ingest_subscribes_to_status_topics(sqlite_storage: Storage) -> None:
    ingest = Ingest(
        sqlite_storage,
        ServerStatus(broker_url="mqtt://127.0.0.1:1883"),
        IngestSettings(broker=parse_broker_url("mqtt://127.0.0.1:1883"), cluster="c1"),
    )

    assert ingest.topic_filters == (
        "kooperant/v1/c1/+/offers/+",
        "kooperant/v1/c1/+/withdrawals/+",
        "kooperant/v1/c1/+/status",
        "kooperant/v1/c1/+/answers/+",
    )


def test_default_client_id_names_cluster() -> None:
    assert default_client_id(None) == "kooperant-aggregator"
    assert default_client_id("pomorskie-metal") == "kooperant-aggregator-pomorskie-metal"


def test_ingest_settings_session_options(tmp_path: Path) -> None:
    settings = ServerSettings(
        broker_url="mqtt://127.0.0.1:1883",
        cluster="c1",
        client_id="ingest-1",
        shared_group="workers",
        session_expiry_seconds=3600,
        mqtt_protocol="3.1.1",
    )

    converted = ingest_settings(settings, parse_broker_url(settings.broker_url or ""))

    assert converted.client_id == "ingest-1"
    assert converted.shared_group == "workers"
    assert converted.session_expiry_seconds == 3600
    assert converted.protocol == "3.1.1"
    assert converted.tls is None


@pytest.mark.mosquitto
async def test_subscriber_kill_redelivers_unacked(mosquitto_url: str, cluster_id: str) -> None:
    options = session_options(mosquitto_url, f"agg-{cluster_id}")
    topic = offer_topic(cluster_id, "acme", "cnc-1")
    started = asyncio.Event()

    async def blocking(topic: str, payload: bytes) -> None:
        started.set()
        await asyncio.Event().wait()

    try:
        async with running_subscriber(options, cluster_id, blocking) as (_, _, task):
            await publish(mosquitto_url, topic, b"first")
            async with asyncio.timeout(WAIT_SECONDS):
                await started.wait()
            task.cancel()  # a crash: no PUBACK and no DISCONNECT
            await asyncio.gather(task, return_exceptions=True)

        received: Received = []
        async with running_subscriber(options, cluster_id, recorder(received)) as (status, _, _):
            await wait_for(lambda: bool(received), "the message came again")
            assert status.broker_session_present is True
        assert received == [(topic, b"first")]
    finally:
        await forget_session(options)


@pytest.mark.mosquitto
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_subscriber_restart_gets_missed_messages(
    mosquitto_url: str, cluster_id: str, protocol: str
) -> None:
    options = session_options(mosquitto_url, f"agg-{cluster_id}", protocol=protocol)
    topic = offer_topic(cluster_id, "acme", "cnc-1")
    received: Received = []

    try:
        async with running_subscriber(options, cluster_id, recorder(received)):
            await publish(mosquitto_url, topic, b"handled")
            await wait_for(lambda: len(received) == 1, "the first message arrived")

        await publish(mosquitto_url, topic, b"while-down-1")
        await publish(mosquitto_url, topic, b"while-down-2")
        received.clear()
        async with running_subscriber(options, cluster_id, recorder(received)) as (status, _, _):
            await wait_for(lambda: len(received) == 2, "the missed messages arrived")
            assert status.broker_session_present is True
        assert received == [(topic, b"while-down-1"), (topic, b"while-down-2")]
    finally:
        await forget_session(options)


@pytest.mark.mosquitto
async def test_subscriber_stop_finishes_current_message(
    mosquitto_url: str, cluster_id: str
) -> None:
    options = session_options(mosquitto_url, f"agg-{cluster_id}")
    topic = offer_topic(cluster_id, "acme", "cnc-1")
    started = asyncio.Event()
    release = asyncio.Event()
    finished: Received = []

    async def slow(topic: str, payload: bytes) -> None:
        started.set()
        await release.wait()
        finished.append((topic, payload))

    try:
        async with running_subscriber(options, cluster_id, slow) as (_, stop, task):
            await publish(mosquitto_url, topic, b"in-progress")
            async with asyncio.timeout(WAIT_SECONDS):
                await started.wait()
            stop.set()
            await asyncio.sleep(0)  # let the subscriber see the stop before the handler ends
            release.set()
            async with asyncio.timeout(WAIT_SECONDS):
                await task
        assert finished == [(topic, b"in-progress")]

        received: Received = []
        async with running_subscriber(options, cluster_id, recorder(received)):
            await publish(mosquitto_url, topic, b"marker")
            await wait_for(lambda: bool(received), "the marker arrived")
        assert received == [(topic, b"marker")]
    finally:
        await forget_session(options)


@pytest.mark.mosquitto
async def test_subscriber_stop_after_grace_leaves_unacked(
    mosquitto_url: str,
    cluster_id: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(subscriber_module, "STOP_GRACE_SECONDS", 0.05)
    options = session_options(mosquitto_url, f"agg-{cluster_id}")
    topic = offer_topic(cluster_id, "acme", "cnc-1")
    started = asyncio.Event()

    async def stuck(topic: str, payload: bytes) -> None:
        started.set()
        await asyncio.Event().wait()

    try:
        async with running_subscriber(options, cluster_id, stuck) as (_, stop, task):
            await publish(mosquitto_url, topic, b"stuck")
            async with asyncio.timeout(WAIT_SECONDS):
                await started.wait()
            stop.set()
            async with asyncio.timeout(WAIT_SECONDS):
                await task

        received: Received = []
        async with running_subscriber(options, cluster_id, recorder(received)):
            await wait_for(lambda: bool(received), "the unacknowledged message came again")
        assert received == [(topic, b"stuck")]
        assert "stays unacknowledged" in caplog.text
    finally:
        await forget_session(options)


@pytest.mark.mosquitto
async def test_ingest_restart_gets_missed_offers(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    settings = ServerSettings(
        broker_url=mosquitto_url,
        cluster=cluster_id,
        session_expiry_seconds=TEST_SESSION_EXPIRY,
        reconnect=FAST,
    )
    broker = parse_broker_url(mosquitto_url)
    options = session_options(mosquitto_url, default_client_id(cluster_id))

    async def run_once(until: Callable[[ServerStatus], bool]) -> ServerStatus:
        status = ServerStatus(broker_url=broker.url)
        ingest = Ingest(sqlite_storage, status, ingest_settings(settings, broker))
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await wait_for(lambda: until(status), "ingest reached the expected state")
        stop.set()
        async with asyncio.timeout(WAIT_SECONDS):
            await task
        return status

    try:
        await run_once(lambda status: status.broker_connected)
        for number in range(3):
            offer = machine_offer(cluster=cluster_id, resource=f"cnc-{number}")
            await publish(
                mosquitto_url, offer_topic(cluster_id, "acme", f"cnc-{number}"), offer.to_payload()
            )

        status = await run_once(lambda status: status.accepted_offers == 3)
        assert status.broker_session_present is True
        for number in range(3):
            assert sqlite_storage.count_history(cluster_id, "acme", f"cnc-{number}") == 1
    finally:
        await forget_session(options)


@pytest.mark.mosquitto
@pytest.mark.postgres
async def test_shared_group_workers_store_each_once(
    postgres_url: str, mosquitto_url: str, cluster_id: str
) -> None:
    # Each worker has a storage of its own, with its own connections, as two processes would.
    storages = [Storage(postgres_url) for _ in range(2)]
    storages[0].migrate()
    broker = parse_broker_url(mosquitto_url)
    statuses = [ServerStatus(broker_url=broker.url) for _ in range(2)]
    stop = asyncio.Event()
    workers = []
    for number, (storage, status) in enumerate(zip(storages, statuses, strict=True)):
        settings = ServerSettings(
            database=postgres_url,
            broker_url=mosquitto_url,
            cluster=cluster_id,
            client_id=f"ingest-{number}-{cluster_id}",
            shared_group="workers",
            session_expiry_seconds=TEST_SESSION_EXPIRY,
            reconnect=FAST,
        )
        ingest = Ingest(storage, status, ingest_settings(settings, broker))
        workers.append(asyncio.create_task(ingest.run(stop)))
    count = 60

    try:
        await wait_for(
            lambda: all(status.broker_connected for status in statuses), "both connected"
        )
        for number in range(count):
            resource = f"res-{number}"
            offer = machine_offer(cluster=cluster_id, resource=resource)
            await publish(
                mosquitto_url, offer_topic(cluster_id, "acme", resource), offer.to_payload()
            )
        await wait_for(
            lambda: sum(status.accepted_offers for status in statuses) >= count,
            "every offer was stored",
        )
    finally:
        stop.set()
        async with asyncio.timeout(WAIT_SECONDS):
            await asyncio.gather(*workers)
        for number in range(2):
            await forget_session(session_options(mosquitto_url, f"ingest-{number}-{cluster_id}"))

    reader = storages[0]
    stored = [reader.count_history(cluster_id, "acme", f"res-{number}") for number in range(count)]
    for storage in storages:
        storage.close()
    assert stored == [1] * count
    assert sum(status.accepted_offers for status in statuses) == count
    assert sum(status.duplicate_messages for status in statuses) == 0
    assert all(status.accepted_offers > 0 for status in statuses), "one worker got nothing"


async def test_subscriber_falls_back_to_mqtt311(caplog: pytest.LogCaptureFixture) -> None:
    # amqtt 0.12.1 sends no CONNACK to an MQTT 5 CONNECT, so the attempt times out.
    async with EmbeddedBroker(port=0) as embedded:
        options = session_options(embedded.url, "agg", protocol="5", connect_timeout_seconds=0.5)
        received: Received = []
        status = ServerStatus(broker_url=embedded.url)
        subscriber = Subscriber(
            options,
            cluster_filters("c1"),
            recorder(received),
            status,
            reconnect=FAST,
            clock=utc_now,
            fallback_protocol="3.1.1",
        )
        stop = asyncio.Event()
        task = asyncio.create_task(subscriber.run(stop))
        try:
            await wait_for(lambda: status.broker_connected or task.done(), "connected with 3.1.1")
            await publish_311(embedded.url, offer_topic("c1", "acme", "cnc-1"), b"hello")
            await wait_for(lambda: bool(received), "a message arrived over MQTT 3.1.1")
        finally:
            stop.set()
            async with asyncio.timeout(WAIT_SECONDS):
                await task

    assert received == [(offer_topic("c1", "acme", "cnc-1"), b"hello")]
    assert "did not accept MQTT 5" in caplog.text
    assert "connects with MQTT 3.1.1" in caplog.text


async def publish_311(url: str, topic: str, payload: bytes) -> None:
    broker = parse_broker_url(url)
    options = ConnectOptions(
        host=broker.host, port=broker.port, client_id="pub-311", protocol="3.1.1"
    )
    async with MqttSession(options) as session:
        await session.publish(topic, payload, qos=1)


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "pki")


async def test_ingest_tls_with_client_certificate(
    tmp_path: Path, sqlite_storage: Storage, authority: CertificateAuthority, cluster_id: str
) -> None:
    server_files = authority.issue_server()
    client_files = authority.issue_client("aggregator")
    tls = TlsFiles(
        authority.cert_file, server_files.cert_file, server_files.key_file, require_certificate=True
    )
    with running(OwnMosquitto(tmp_path, tls=tls)) as mosquitto:
        settings = ServerSettings(
            broker_url=mosquitto.tls_url.replace("127.0.0.1", "localhost"),
            cluster=cluster_id,
            broker_ca_file=authority.cert_file,
            broker_cert_file=client_files.cert_file,
            broker_key_file=client_files.key_file,
            reconnect=FAST,
        )
        broker = parse_broker_url(settings.broker_url or "")
        status = ServerStatus(broker_url=broker.url)
        ingest = Ingest(sqlite_storage, status, ingest_settings(settings, broker))
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        try:
            await wait_for(lambda: status.broker_connected or task.done(), "connected over TLS")
            offer = machine_offer(cluster=cluster_id)
            await publish(
                mosquitto.url, offer_topic(cluster_id, "acme", offer.resource), offer.to_payload()
            )
            await wait_for(lambda: status.accepted_offers == 1, "the offer arrived over TLS")
        finally:
            stop.set()
            async with asyncio.timeout(WAIT_SECONDS):
                await task


async def test_ingest_tls_untrusted_broker_retries(
    tmp_path: Path,
    sqlite_storage: Storage,
    authority: CertificateAuthority,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server_files = authority.issue_server()
    stranger = CertificateAuthority.create(tmp_path / "other-pki", "other-ca")
    tls = TlsFiles(authority.cert_file, server_files.cert_file, server_files.key_file)
    with running(OwnMosquitto(tmp_path, tls=tls)) as mosquitto:
        settings = ServerSettings(
            broker_url=mosquitto.tls_url, broker_ca_file=stranger.cert_file, reconnect=FAST
        )
        broker = parse_broker_url(mosquitto.tls_url)
        status = ServerStatus(broker_url=broker.url)
        ingest = Ingest(sqlite_storage, status, ingest_settings(settings, broker))
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        try:
            await wait_for(lambda: status.broker_error is not None, "the TLS handshake failed")
        finally:
            stop.set()
            async with asyncio.timeout(WAIT_SECONDS):
                await task

    assert not status.broker_connected
    assert "certificate" in (status.broker_error or "")
    assert "retrying with backoff" in caplog.text


async def test_ingest_bad_tls_file_raises(tmp_path: Path, sqlite_storage: Storage) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    settings = ServerSettings(broker_url="mqtts://127.0.0.1:8883", broker_ca_file=not_pem)
    broker = parse_broker_url("mqtts://127.0.0.1:8883")
    ingest = Ingest(
        sqlite_storage, ServerStatus(broker_url=broker.url), ingest_settings(settings, broker)
    )

    with pytest.raises(InvalidSettingError) as raised:
        async with asyncio.timeout(WAIT_SECONDS):
            await ingest.run(asyncio.Event())

    assert raised.value.message_id == "broker_tls_invalid"
    assert str(not_pem) in str(raised.value)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    """A Mosquitto password file with the user ``aggregator`` and ``right-password``."""
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "aggregator", "right-password"],
        check=True,
        capture_output=True,
    )
    return passwords


async def test_subscriber_wrong_password_logs_error_once(
    tmp_path: Path, password_file: Path, caplog: pytest.LogCaptureFixture, cluster_id: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="server.subscriber")
    with running(OwnMosquitto(tmp_path, password_file=password_file)) as mosquitto:
        options = session_options(
            mosquitto.url, "agg", username="aggregator", password="wrong-password"
        )
        status = ServerStatus(broker_url=mosquitto.url)
        policy = BackoffPolicy(minimum=0.01, maximum=0.05)
        subscriber = Subscriber(
            options,
            cluster_filters(cluster_id),
            recorder([]),
            status,
            reconnect=policy,
            clock=utc_now,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(subscriber.run(stop))
        try:
            await wait_for(
                lambda: caplog.text.count("failed again") >= 2, "ingest retried after the refusal"
            )
        finally:
            stop.set()
            async with asyncio.timeout(WAIT_SECONDS):
                await task

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "rejected client 'agg' (user 'aggregator'): " in message
    assert message.count("(user ") == 1
    assert "Check --broker-username and --broker-password-file" in message
    assert "wrong-password" not in caplog.text
    assert not status.broker_connected


async def test_subscriber_broker_restart_logging(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cluster_id: str
) -> None:
    caplog.set_level(logging.INFO, logger="server.subscriber")
    mosquitto = OwnMosquitto(tmp_path, persistence=True)
    received: Received = []
    with running(mosquitto):
        options = session_options(mosquitto.url, "agg")
        async with running_subscriber(options, cluster_id, recorder(received)) as (status, _, _):
            mosquitto.kill()
            await wait_for(lambda: not status.broker_connected, "the loss was noticed")
            mosquitto.start()
            await wait_for(lambda: status.broker_connected, "the connection came back")
            topic = offer_topic(cluster_id, "acme", "cnc-1")
            await publish(mosquitto.url, topic, b"after-restart")
            await wait_for(lambda: bool(received), "a message arrived after the restart")
            assert status.broker_session_present is True

    warnings = [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ]
    infos = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert len([text for text in warnings if "lost or refused" in text]) == 1
    assert not [text for text in warnings if "restored" in text]
    assert len([text for text in infos if "restored" in text]) == 1
