"""A running request router, beta's requests, a reader of request topics, an API with tokens."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from kooperant.backoff import BackoffPolicy
from kooperant.intervals import Interval
from kooperant.mqtt import ConnectOptions, MqttSession, ReceivedMessage
from kooperant.protocol.request import CapacityRequest, Contact, new_request_id
from kooperant.protocol.topics import request_topic
from server.api import create_app
from server.ingest import IngestSettings
from server.mqtt_url import BrokerAddress
from server.request_router import RequestRouter
from server.status import ServerStatus
from server.storage import Storage, Viewer
from server.storage.tables import capacity_requests
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, hours

NOW = T0 - hours(1)
FAST_RECONNECT = BackoffPolicy(minimum=0.05, maximum=0.2)
POLL_SECONDS = 0.05
RECEIVE_SECONDS = 5.0
# How long a test waits to be sure that no (further) message arrives.
QUIET_SECONDS = 0.5


def machine_request(cluster: str, **changes: Any) -> CapacityRequest:
    """Return beta's request for two free hours of acme's machine cnc-5ax-01 in ``cluster``."""
    fields: dict[str, Any] = {
        "request_id": new_request_id(),
        "cluster": cluster,
        "member": "acme",
        "resource": "cnc-5ax-01",
        "requester": "beta",
        "created_at": NOW,
        "expires_at": NOW + hours(48),
        "contact": Contact("Anna Nowak", email="anna@beta.example"),
        "message": "Frezowanie 40 detali",
        "slot": Interval(T0 + hours(1), T0 + hours(3)),
    }
    fields.update(changes)
    return CapacityRequest(**fields)


def create_request(storage: Storage, cluster: str) -> CapacityRequest:
    """Store beta's machine request in ``cluster`` as sent and return it."""
    request = machine_request(cluster)
    storage.create_request(request, viewer=Viewer(cluster=cluster, member="beta"), now=NOW)
    return request


def routing_of(storage: Storage, request_id: str) -> str | None:
    with storage.engine.connect() as connection:
        routing: str | None = connection.execute(
            select(capacity_requests.c.routing).where(capacity_requests.c.request_id == request_id)
        ).scalar_one()
    return routing


async def wait_for_routing(storage: Storage, request_id: str, expected: str) -> None:
    async with asyncio.timeout(RECEIVE_SECONDS):
        # Polls the database, because the router signals nothing when it records routing.
        while routing_of(storage, request_id) != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def router_settings(host: str, port: int, cluster: str, **changes: Any) -> IngestSettings:
    """Return settings for the broker at ``host:port`` with a short reconnect delay."""
    fields: dict[str, Any] = {
        "broker": BrokerAddress(host, port),
        "cluster": cluster,
        "reconnect": FAST_RECONNECT,
    }
    fields.update(changes)
    return IngestSettings(**fields)


@asynccontextmanager
async def running_router(
    storage: Storage, settings: IngestSettings, **options: Any
) -> AsyncIterator[RequestRouter]:
    """Run a ``RequestRouter`` with a short poll until the block ends."""
    options.setdefault("poll_seconds", POLL_SECONDS)
    router = RequestRouter(storage, settings, rng=random.Random(3), **options)
    stop = asyncio.Event()
    task = asyncio.create_task(router.run(stop))
    try:
        yield router
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


@asynccontextmanager
async def topic_reader(options: ConnectOptions, topic_filter: str) -> AsyncIterator[MqttSession]:
    """A session subscribed to ``topic_filter``, so retained messages arrive at once."""
    async with MqttSession(options) as session:
        await session.subscribe([topic_filter])
        yield session


async def next_message(session: MqttSession, seconds: float = RECEIVE_SECONDS) -> ReceivedMessage:
    return await asyncio.wait_for(anext(aiter(session.messages())), seconds)


def reader_options(host: str, port: int) -> ConnectOptions:
    return ConnectOptions(host=host, port=port, client_id=f"test-reader-{os.urandom(4).hex()}")


async def clear_topics(options: ConnectOptions, topics: list[str]) -> None:
    async with MqttSession(options) as session:
        for topic in topics:
            await session.publish(topic, b"", qos=1, retain=True)


def topic_of(request: CapacityRequest) -> str:
    return request_topic(request.cluster, request.member, request.request_id)


@asynccontextmanager
async def requests_api(
    storage: Storage,
    tmp_path: Path,
    cluster: str,
    requests_changed: asyncio.Event | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with tokens ``token-acme`` and ``token-beta`` for the members of ``cluster``."""
    path = tmp_path / "tokens.yaml"
    lines = [
        f"- {{cluster: {cluster}, member: {name}, token_sha256: {hash_token(f'token-{name}')}}}"
        for name in ("acme", "beta")
    ]
    path.write_text("\n".join(lines) + "\n")
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    app = create_app(
        storage,
        status,
        tokens=TokenStore.load(path),
        clock=lambda: NOW,
        requests_changed=requests_changed,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        yield client
