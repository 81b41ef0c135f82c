"""Fixtures of the MQTT session tests: unique topics, connect options, own brokers."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kooperant.mqtt import ConnectOptions, MqttSession, ReceivedMessage
from tests.support.mosquitto import OwnMosquitto

RECEIVE_TIMEOUT_SECONDS = 10.0


def paho_threads() -> list[threading.Thread]:
    """Return the running paho network threads (``loop_start`` names them paho-mqtt-client-*)."""
    return [thread for thread in threading.enumerate() if thread.name.startswith("paho-mqtt")]


@pytest.fixture(autouse=True)
def no_leaked_paho_threads() -> Iterator[None]:
    """Fail a test that leaves a paho network thread running."""
    before = set(paho_threads())
    yield
    leaked = [thread.name for thread in paho_threads() if thread not in before]
    assert leaked == [], f"paho threads still running after the test: {leaked}"


@pytest.fixture
def topic_root() -> str:
    """A topic prefix no other test uses, so retained messages cannot leak between tests."""
    return f"kooperant-test/{uuid.uuid4().hex[:12]}"


def client_id(name: str = "client") -> str:
    return f"kooperant-test-{name}-{uuid.uuid4().hex[:8]}"


def options_for(port: int = 1883, **settings: Any) -> ConnectOptions:
    """Make connect options for 127.0.0.1, with a fresh client id unless one is given."""
    settings.setdefault("client_id", client_id())
    return ConnectOptions(host="127.0.0.1", port=port, **settings)


async def receive(session: MqttSession, count: int) -> list[ReceivedMessage]:
    """Return the next ``count`` messages of ``session``, failing the test after 10 s without."""
    received: list[ReceivedMessage] = []

    async def collect() -> None:
        async for message in session.messages():
            received.append(message)
            if len(received) == count:
                return

    try:
        await asyncio.wait_for(collect(), RECEIVE_TIMEOUT_SECONDS)
    except TimeoutError:
        pytest.fail(f"received {len(received)} of {count} messages: {received}")
    return received


@pytest.fixture
def machine_broker(mosquitto_url: str) -> int:
    """The port of the machine's Mosquitto (skips when it is not running)."""
    return 1883


def make_broker(folder: Path, **settings: Any) -> OwnMosquitto:
    """Make an ``OwnMosquitto`` in ``folder`` (skips when mosquitto is not installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return OwnMosquitto(folder, **settings)
    except FileNotFoundError as error:
        pytest.skip(str(error))
