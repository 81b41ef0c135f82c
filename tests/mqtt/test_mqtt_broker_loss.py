"""MqttSession when its broker dies: an own Mosquitto killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from kooperant.mqtt import ConnectionLost, MqttSession
from tests.mqtt.conftest import make_broker, options_for, receive
from tests.support.mosquitto import OwnMosquitto, running

LOSS_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def broker(tmp_path: Path) -> OwnMosquitto:
    return make_broker(tmp_path / "broker")


async def test_messages_raise_when_broker_killed(broker: OwnMosquitto) -> None:
    broker.start()
    try:
        async with MqttSession(options_for(broker.port)) as session:
            await session.subscribe(["t/#"])
            await session.publish("t/before", b"before")
            reader = asyncio.create_task(receive(session, 2))
            await asyncio.sleep(0.1)

            broker.kill()

            with pytest.raises(ConnectionLost, match=f"127.0.0.1:{broker.port}"):
                await asyncio.wait_for(reader, LOSS_TIMEOUT_SECONDS)
            with pytest.raises(ConnectionLost):
                await session.publish("t/after", b"after")
    finally:
        broker.stop()


async def test_pending_publish_raises_when_killed(broker: OwnMosquitto) -> None:
    broker.start()
    try:
        async with MqttSession(options_for(broker.port)) as session:
            assert broker.process is not None
            # A stopped broker reads nothing, so the publish waits for a PUBACK that never comes.
            os.kill(broker.process.pid, signal.SIGSTOP)
            publishing = asyncio.create_task(session.publish("t/pending", b"pending"))
            await asyncio.sleep(0.2)
            assert not publishing.done()

            broker.kill()

            with pytest.raises(ConnectionLost):
                await asyncio.wait_for(publishing, LOSS_TIMEOUT_SECONDS)
    finally:
        broker.stop()


async def test_session_reconnects_after_restart(tmp_path: Path) -> None:
    broker = make_broker(tmp_path / "broker", persistence=True)
    options = options_for(broker.port, clean_start=False, session_expiry_seconds=60)
    with running(broker):
        async with MqttSession(options) as first:
            await first.subscribe(["t/#"])

        broker.stop()
        broker.start()

        async with MqttSession(options_for(broker.port)) as publisher:
            await publisher.publish("t/after-restart", b"queued")
        async with MqttSession(options) as second:
            (message,) = await receive(second, 1)

    assert second.session_present is True
    assert message.payload == b"queued"
