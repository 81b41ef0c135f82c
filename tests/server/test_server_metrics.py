"""``/metrics`` and ``/healthz`` of the aggregator and of ``server ingest --metrics-port``."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kooperant import __version__
from kooperant.net import free_tcp_port
from kooperant.protocol import offer_topic
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.topics import TopicError
from server.api import create_app
from server.errors import InvalidSettingError
from server.message_handling import invalid_reason
from server.metrics import ServerMetrics
from server.mqtt_url import parse_broker_url
from server.request_notifier import MAX_MAIL_ATTEMPTS
from server.service import ServerSettings, run_ingest
from server.status import RejectReason, ServerStatus
from server.storage import Storage
from server.storage.request_routing import Routing
from server.tokens import TokenStore, add_token
from server.validation import PayloadTooLargeError, TopicMismatchError
from tests.conftest import POSTGRES_ADMIN_DSN
from tests.server import test_request_notifier as notifier_tests
from tests.server.helpers import machine_offer
from tests.server.ingest_helpers import publisher, rejected, resources, running_ingest, wait_until
from tests.server.request_routing_helpers import (
    NOW,
    clear_topics,
    create_request,
    reader_options,
    router_settings,
    running_router,
    topic_of,
    wait_for_routing,
)
from tests.server.test_requests_storage import machine_request
from tests.server.test_server_cli import invoke as invoke_cli
from tests.server.test_service import running_server, wait_for_status
from tests.support.smtp_sink import SmtpSink

offers = notifier_tests.offers
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
PASSWORD = "s3cret-ingest-pass"


def samples(text: str) -> Samples:
    """Return every sample of the metrics page by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.mark.mosquitto
async def test_metrics_after_ingest(
    sqlite_storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    offer = machine_offer(cluster=cluster_id, member="acme")

    async with (
        running_ingest(sqlite_storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: _true(status.broker_connected), "ingest connected")
        await publish(offer_topic(cluster_id, "acme", offer.resource), offer.to_payload())
        await publish(offer_topic(cluster_id, "acme", "cnc-2"), b'{"schema": "nonsense"}')
        await wait_until(lambda: _has_items(api, 1, 1), "one offer stored, one rejected")
        response = await api.get("/metrics")

    found = samples(response.text)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert found[("kooperant_server_messages_received_total", ())] == 2
    assert found[("kooperant_server_messages_stored_total", (("kind", "offer"),))] == 1
    assert found[("kooperant_server_messages_stored_total", (("kind", "withdrawal"),))] == 0
    assert (
        found[("kooperant_server_messages_rejected_total", (("reason", "invalid_payload"),))] == 1
    )
    assert found[("kooperant_server_messages_rejected_total", (("reason", "too_large"),))] == 0
    assert found[("kooperant_server_messages_duplicate_total", ())] == 0
    assert found[("kooperant_server_messages_dropped_total", ())] == 0
    assert found[("kooperant_server_current_offers", ())] == 1
    assert found[("kooperant_server_ingest_connected", ())] == 1
    assert found[("kooperant_server_database_up", ())] == 1
    assert found[("kooperant_server_storage_retries_total", ())] == 0
    assert found[("kooperant_server_build_info", (("version", __version__),))] == 1
    # No label names a member or a cluster.
    assert "acme" not in response.text
    assert cluster_id not in response.text


async def _has_items(api: httpx.AsyncClient, offers: int, rejections: int) -> bool:
    return len(await resources(api)) == offers and len(await rejected(api)) == rejections


async def _true(value: bool) -> bool:
    return value


@pytest.mark.mosquitto
async def test_healthz_503_after_database_dropped(
    postgres_url: str, mosquitto_url: str, cluster_id: str
) -> None:
    settings = ServerSettings(
        database=postgres_url,
        broker_url=mosquitto_url,
        cluster=cluster_id,
        http_port=free_tcp_port(),
    )
    name = postgres_url.rsplit("/", 1)[1]

    async with running_server(settings) as client:
        healthy = await wait_for_status(client, "/healthz", 200)
        before = samples((await client.get("/metrics")).text)
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        failing = await wait_for_status(client, "/healthz", 503)
        after = samples((await client.get("/metrics")).text)

    assert healthy.json() == {"status": "ok", "database": "ok", "broker": "connected"}
    assert failing.json()["status"] == "failing"
    assert failing.json()["database"] != "ok"
    assert failing.json()["broker"] == "connected"
    assert before[("kooperant_server_database_up", ())] == 1
    assert before[("kooperant_server_current_offers", ())] == 0
    assert before[("kooperant_server_requests_routed_total", (("action", "published"),))] == 0
    assert after[("kooperant_server_database_up", ())] == 0
    assert ("kooperant_server_current_offers", ()) not in after


async def test_metrics_token_required_when_set(sqlite_storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(sqlite_storage, status, metrics_token="scrape-token")
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer other"})
        basic = await client.get("/metrics", headers={"Authorization": "Basic scrape-token"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
        health = await client.get("/healthz")

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert basic.status_code == 401
    assert right.status_code == 200
    assert "kooperant_server_messages_received_total 0.0" in right.text
    assert health.status_code == 200


async def test_metrics_open_without_token(sqlite_storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))

    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        response = await client.get("/metrics")

    found = samples(response.text)
    assert response.status_code == 200
    assert found[("kooperant_server_ingest_connected", ())] == 0
    # The request router and e-mails run in server run only, so this app has no such metric.
    assert ("kooperant_server_requests_routed_total", (("action", "published"),)) not in found


async def test_ingest_metrics_port_serves_both(tmp_path: Path, free_port: int) -> None:
    database = f"sqlite:///{tmp_path / 'k.db'}"
    Storage(database).migrate()
    broker_port = free_tcp_port()
    settings = ServerSettings(
        database=database,
        broker_url=f"mqtt://127.0.0.1:{broker_port}",
        broker_username="ingest",
        broker_password=PASSWORD,
        metrics_port=free_port,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port}", timeout=2) as client:
            health = await _when_listening(client, "/healthz")
            metrics = await client.get("/metrics")
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task

    found = samples(metrics.text)
    assert health.status_code == 503
    assert health.json()["database"] == "ok"
    assert health.json()["broker"].startswith("disconnected: ")
    assert found[("kooperant_server_ingest_connected", ())] == 0
    assert found[("kooperant_server_database_up", ())] == 1
    for body in (health.text, metrics.text):
        assert PASSWORD not in body


async def _when_listening(client: httpx.AsyncClient, path: str) -> httpx.Response:
    async with asyncio.timeout(5):
        while True:
            try:
                return await client.get(path)
            except httpx.ConnectError:
                await asyncio.sleep(0.05)


async def test_ingest_metrics_port_taken(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'k.db'}"
    Storage(database).migrate()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ServerSettings(
            database=database, broker_url=f"mqtt://127.0.0.1:{free_tcp_port()}", metrics_port=port
        )

        with pytest.raises(InvalidSettingError) as raised:
            await run_ingest(settings, asyncio.Event())

    assert raised.value.message_id == "metrics_port_unusable"
    assert f"127.0.0.1:{port}" in raised.value.localized("en")
    assert "--metrics-port" in raised.value.localized("en")


def test_empty_metrics_token_rejected() -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(metrics_token="  ")

    assert "--metrics-token-file" in raised.value.localized("en")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TopicError("bad topic"), RejectReason.INVALID_TOPIC),
        (TopicMismatchError("other member"), RejectReason.TOPIC_MISMATCH),
        (PayloadTooLargeError("too big"), RejectReason.TOO_LARGE),
        (OfferValidationError("bad schema"), RejectReason.INVALID_PAYLOAD),
    ],
)
def test_invalid_reason_by_error(error: Exception, reason: RejectReason) -> None:
    assert invalid_reason(error) is reason


@pytest.mark.mosquitto
async def test_metrics_count_routed_requests(
    sqlite_storage: Storage, cluster_id: str, mosquitto_url: str
) -> None:
    sqlite_storage.store_offer(machine_offer(cluster=cluster_id, accepts_requests=True), NOW)
    request = create_request(sqlite_storage, cluster_id)
    status = ServerStatus(broker_url=mosquitto_url)

    try:
        settings = router_settings("127.0.0.1", 1883, cluster_id)
        async with running_router(sqlite_storage, settings) as router:
            await wait_for_routing(sqlite_storage, request.request_id, Routing.PUBLISHED)
            metrics = ServerMetrics(sqlite_storage, status, lambda: NOW, router=router)
            found = samples((await metrics.render()).decode())
    finally:
        await clear_topics(reader_options("127.0.0.1", 1883), [topic_of(request)])

    assert found[("kooperant_server_requests_routed_total", (("action", "published"),))] == 1
    assert found[("kooperant_server_requests_routed_total", (("action", "cleared"),))] == 0
    assert found[("kooperant_server_current_offers", ())] == 1


async def test_metrics_count_sent_and_failed_mails(offers: Storage) -> None:
    clock = notifier_tests.Clock(notifier_tests.NOW)
    notifier_tests.create(offers)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")

    # No SMTP server listens on this port, so every attempt fails until the last gives up.
    failing = notifier_tests.notifier_for(offers, free_tcp_port(), clock)
    for _ in range(MAX_MAIL_ATTEMPTS):
        await failing.send_waiting()
        clock.advance(notifier_tests.RETRY.maximum)
    notifier_tests.create(offers, machine_request())
    with SmtpSink(free_tcp_port()) as sink:
        working = notifier_tests.notifier_for(offers, sink.port, clock)
        await working.send_waiting()
        sink.wait_for(1)

    failed = samples(
        (await ServerMetrics(offers, status, clock, notifier=failing).render()).decode()
    )
    sent = samples((await ServerMetrics(offers, status, clock, notifier=working).render()).decode())

    assert failed[("kooperant_server_request_email_failures_total", ())] == MAX_MAIL_ATTEMPTS
    assert failed[("kooperant_server_request_emails_abandoned_total", ())] == 1
    assert failed[("kooperant_server_request_emails_sent_total", ())] == 0
    assert sent[("kooperant_server_request_emails_sent_total", ())] == 1
    assert sent[("kooperant_server_request_email_failures_total", ())] == 0


async def test_metrics_open_with_api_tokens(sqlite_storage: Storage, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    add_token(tokens_file, "pomorskie-metal", "acme")
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(sqlite_storage, status, tokens=TokenStore.load(tokens_file))
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        metrics = await client.get("/metrics")
        listing = await client.get("/api/v1/resources")

    # Scraping needs no API token, while the API does.
    assert metrics.status_code == 200
    assert listing.status_code == 401


@pytest.mark.parametrize("command", ["run", "ingest"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "Cannot read the metrics token file {path} (--metrics-token-file)"),
        (
            "\nsecond line\n",
            "The metrics token file (--metrics-token-file) has an empty first line",
        ),
    ],
)
def test_cli_bad_metrics_token_file(
    tmp_path: Path, command: str, content: str | None, expected: str
) -> None:
    path = tmp_path / "metrics-token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'k.db'}"
    arguments = ["--broker", "mqtt://127.0.0.1:1", "--metrics-token-file", str(path)]

    result = invoke_cli(command, "--database", database, *arguments)

    assert result.exit_code == 2, result.output
    assert expected.format(path=path) in result.output
