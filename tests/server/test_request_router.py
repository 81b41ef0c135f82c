"""The request router: retained requests on the owner's topic, clears, broker outages, ACL.

The normal path runs against the machine's Mosquitto on 127.0.0.1:1883, with a cluster id of
the test's own. Broker outages and ACL denials use a Mosquitto of the test's own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kooperant.protocol.request import parse_request
from server import request_router
from server.mqtt_url import BrokerAddress
from server.service import sweep_expired
from server.storage import Storage, Viewer
from server.storage.request_routing import Routing
from tests.server.helpers import hours, machine_offer
from tests.server.request_routing_helpers import (
    NOW,
    QUIET_SECONDS,
    clear_topics,
    create_request,
    machine_request,
    next_message,
    reader_options,
    requests_api,
    router_settings,
    routing_of,
    running_router,
    topic_of,
    topic_reader,
    wait_for_routing,
)
from tests.server.test_broker_security import start_cluster_broker
from tests.support.mosquitto import OwnMosquitto, running

HOST, PORT = "127.0.0.1", 1883


@pytest.fixture
async def offered(
    storage: Storage, cluster_id: str, mosquitto_url: str
) -> AsyncIterator[tuple[Storage, list[str]]]:
    """Storage with acme's machine in ``cluster_id``; clears the listed topics at the end."""
    storage.store_offer(machine_offer(cluster=cluster_id, accepts_requests=True), NOW)
    topics: list[str] = []
    yield storage, topics
    await clear_topics(reader_options(HOST, PORT), topics)


async def test_router_publishes_retained_request(
    offered: tuple[Storage, list[str]], cluster_id: str
) -> None:
    storage, topics = offered
    request = create_request(storage, cluster_id)
    topics.append(topic_of(request))

    async with running_router(storage, router_settings(HOST, PORT, cluster_id)):
        await wait_for_routing(storage, request.request_id, Routing.PUBLISHED)

    # A reader that subscribes afterwards gets the retained request, and nothing else.
    async with topic_reader(reader_options(HOST, PORT), f"kooperant/v1/{cluster_id}/#") as reader:
        message = await next_message(reader)
        with pytest.raises(TimeoutError):
            await next_message(reader, QUIET_SECONDS)
    assert message.topic == f"kooperant/v1/{cluster_id}/acme/requests/{request.request_id}"
    assert message.retain
    assert message.qos == 1
    assert parse_request(message.payload) == request


async def test_router_clears_withdrawn_request(
    offered: tuple[Storage, list[str]], cluster_id: str
) -> None:
    storage, topics = offered
    request = create_request(storage, cluster_id)
    topics.append(topic_of(request))

    async with (
        topic_reader(reader_options(HOST, PORT), topic_of(request)) as reader,
        running_router(storage, router_settings(HOST, PORT, cluster_id)),
    ):
        published = await next_message(reader)
        await wait_for_routing(storage, request.request_id, Routing.PUBLISHED)
        beta = Viewer(cluster=cluster_id, member="beta")
        storage.withdraw_request(request.request_id, viewer=beta, now=NOW + hours(1))
        cleared = await next_message(reader)
        await wait_for_routing(storage, request.request_id, Routing.CLEARED)

    assert published.payload != b""
    assert cleared.payload == b""
    async with topic_reader(reader_options(HOST, PORT), topic_of(request)) as late_reader:
        with pytest.raises(TimeoutError):
            await next_message(late_reader, QUIET_SECONDS)


async def test_router_clears_expired_request(
    offered: tuple[Storage, list[str]], cluster_id: str
) -> None:
    storage, topics = offered
    request = create_request(storage, cluster_id)
    topics.append(topic_of(request))
    after_expiry = request.expires_at + hours(1)

    async with (
        topic_reader(reader_options(HOST, PORT), topic_of(request)) as reader,
        running_router(storage, router_settings(HOST, PORT, cluster_id)),
    ):
        await next_message(reader)
        await wait_for_routing(storage, request.request_id, Routing.PUBLISHED)
        # The sweep's first pass runs at once, with the clock past the request's expiry.
        stop = asyncio.Event()
        sweep = asyncio.create_task(sweep_expired(storage, lambda: after_expiry, 60.0, stop))
        cleared = await next_message(reader)
        await wait_for_routing(storage, request.request_id, Routing.CLEARED)
        stop.set()
        await sweep

    assert cleared.payload == b""
    beta = Viewer(cluster=cluster_id, member="beta")
    stored = storage.get_request(request.request_id, viewer=beta)
    assert stored is not None
    assert stored.state == "expired"


async def test_router_skips_request_final_before_publishing(
    offered: tuple[Storage, list[str]], cluster_id: str
) -> None:
    storage, topics = offered
    request = create_request(storage, cluster_id)
    topics.append(topic_of(request))
    beta = Viewer(cluster=cluster_id, member="beta")
    storage.withdraw_request(request.request_id, viewer=beta, now=NOW)

    async with (
        topic_reader(reader_options(HOST, PORT), f"kooperant/v1/{cluster_id}/#") as reader,
        running_router(storage, router_settings(HOST, PORT, cluster_id)),
    ):
        await wait_for_routing(storage, request.request_id, Routing.CLEARED)
        with pytest.raises(TimeoutError):
            await next_message(reader, QUIET_SECONDS)


async def test_router_ignores_other_cluster(
    offered: tuple[Storage, list[str]], cluster_id: str
) -> None:
    storage, topics = offered
    request = create_request(storage, cluster_id)
    topics.append(topic_of(request))

    async with running_router(storage, router_settings(HOST, PORT, f"{cluster_id}-x")):
        await asyncio.sleep(QUIET_SECONDS)

    assert routing_of(storage, request.request_id) is None


async def test_router_publishes_after_broker_returns(
    storage: Storage, cluster_id: str, tmp_path: Path
) -> None:
    storage.store_offer(machine_offer(cluster=cluster_id, accepts_requests=True), NOW)
    broker = OwnMosquitto(tmp_path)
    request = create_request(storage, cluster_id)

    async with running_router(storage, router_settings(HOST, broker.port, cluster_id)):
        await asyncio.sleep(QUIET_SECONDS)
        assert routing_of(storage, request.request_id) is None
        broker.start()
        try:
            await wait_for_routing(storage, request.request_id, Routing.PUBLISHED)
            async with topic_reader(reader_options(HOST, broker.port), topic_of(request)) as reader:
                message = await next_message(reader)
        finally:
            broker.stop()

    assert parse_request(message.payload) == request


async def test_router_retries_after_acl_denial(
    storage: Storage,
    cluster_id: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage.store_offer(machine_offer(cluster=cluster_id, accepts_requests=True), NOW)
    # The ACL is written for another cluster, so the aggregator may not write this one's topics.
    cluster_broker = start_cluster_broker(tmp_path, f"{cluster_id}-x")
    tls_port = cluster_broker.broker.tls_port
    assert tls_port is not None
    options = cluster_broker.options("aggregator")
    settings = router_settings(
        HOST,
        tls_port,
        cluster_id,
        broker=BrokerAddress(HOST, tls_port, tls=True),
        username=options.username,
        password=options.password,
        tls=options.tls,
    )
    request = create_request(storage, cluster_id)
    clock = [1000.0]
    caplog.set_level(logging.DEBUG, logger="server.request_router")

    try:
        async with running_router(storage, settings, monotonic=lambda: clock[0]):
            await wait_until_logged(caplog, "rejected the request message")
            await asyncio.sleep(QUIET_SECONDS)
            assert routing_of(storage, request.request_id) is None

            acl_file = tmp_path / "acl"
            acl_file.write_text(acl_file.read_text().replace(f"{cluster_id}-x", cluster_id))
            process = cluster_broker.broker.process
            assert process is not None
            os.kill(process.pid, signal.SIGHUP)
            await asyncio.sleep(QUIET_SECONDS)
            assert routing_of(storage, request.request_id) is None

            clock[0] += 301.0
            await wait_for_routing(storage, request.request_id, Routing.PUBLISHED)
    finally:
        cluster_broker.broker.stop()

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert topic_of(request) in errors[0].getMessage()
    assert "not authorized" in errors[0].getMessage().lower()
    # The frozen clock kept the router from trying the topic again before the delay.
    assert not [record for record in caplog.records if "again" in record.getMessage()]


async def wait_until_logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    async with asyncio.timeout(5):
        # Polls the captured records, which signal nothing when one is added.
        while not any(text in record.getMessage() for record in caplog.records):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_api_change_wakes_router(
    offered: tuple[Storage, list[str]],
    cluster_id: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    storage, topics = offered
    caplog.set_level(logging.INFO, logger="server.request_router")
    body = {
        "cluster": cluster_id,
        "member": "acme",
        "resource": "cnc-5ax-01",
        "slot": {"start": "2026-12-07T08:00:00+01:00", "end": "2026-12-07T09:00:00+01:00"},
        "contact": {"name": "Anna Nowak", "email": "anna@beta.example"},
    }
    beta = {"Authorization": "Bearer token-beta"}

    # A poll interval far above the waits below, so only the wakeup can explain a quick send.
    settings = router_settings(HOST, PORT, cluster_id)
    async with running_router(storage, settings, poll_seconds=60.0) as router:
        await wait_until_logged(caplog, "Request router connected")
        async with requests_api(storage, tmp_path, cluster_id, router.wakeup) as api:
            created = await api.post("/api/v1/requests", json=body, headers=beta)
            assert created.status_code == 201, created.text
            request_id = created.json()["request_id"]
            topics.append(f"kooperant/v1/{cluster_id}/acme/requests/{request_id}")
            await wait_for_routing(storage, request_id, Routing.PUBLISHED)

            withdrawn = await api.post(f"/api/v1/requests/{request_id}/withdraw", headers=beta)
            assert withdrawn.status_code == 200, withdrawn.text
            await wait_for_routing(storage, request_id, Routing.CLEARED)


async def test_rejected_requests_hold_back_nothing(
    storage: Storage,
    cluster_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Anonymous clients may write acme's request topics only, so requests to gamma are denied.
    acl_file = tmp_path / "acl"
    acl_file.write_text(f"topic write kooperant/v1/{cluster_id}/acme/requests/+\n")
    broker = OwnMosquitto(tmp_path, acl_file=acl_file)
    storage.store_offer(
        machine_offer(cluster=cluster_id, member="gamma", accepts_requests=True), NOW
    )
    storage.store_offer(machine_offer(cluster=cluster_id, accepts_requests=True), NOW)
    beta = Viewer(cluster=cluster_id, member="beta")
    denied = machine_request(cluster_id, member="gamma")
    storage.create_request(denied, viewer=beta, now=NOW)
    allowed = machine_request(cluster_id, created_at=NOW + hours(1))
    storage.create_request(allowed, viewer=beta, now=NOW + hours(1))
    # One request per batch, so the older, denied request alone would fill every batch.
    monkeypatch.setattr(request_router, "BATCH_SIZE", 1)

    with running(broker):
        async with running_router(storage, router_settings(HOST, broker.port, cluster_id)):
            await wait_for_routing(storage, allowed.request_id, Routing.PUBLISHED)

    assert routing_of(storage, denied.request_id) is None
