"""The publisher: losing and regaining a broker started by the test."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from agent.config import BrokerSettings
from agent.publisher import Publisher
from kooperant.net import free_tcp_port
from kooperant.protocol import Offer, ResourceKind, offer_topic

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


class OwnBroker:
    """A Mosquitto process on a free loopback port that the test may stop and start."""

    def __init__(self, folder: Path) -> None:
        self.port = free_tcp_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("the mosquitto program is not installed")
    broker = OwnBroker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


def offer(free_hours: float) -> Offer:
    return Offer(
        cluster="test-reconnect",
        member="acme",
        resource="cnc-1",
        kind=ResourceKind.MACHINE,
        generated_at=NOW,
        free_hours=free_hours,
    )


async def retained_payload(port: int) -> bytes:
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(offer_topic("test-reconnect", "acme", "cnc-1"), qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(client.messages))
    assert isinstance(message.payload, bytes)
    return message.payload


async def test_publisher_survives_broker_restart(
    own_broker: OwnBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.publisher")
    settings = BrokerSettings(
        url=f"mqtt://127.0.0.1:{own_broker.port}",
        reconnect_min_seconds=0.05,
        reconnect_max_seconds=0.2,
    )
    publisher = Publisher(settings, "test-reconnect-agent", cluster="test-reconnect", member="acme")
    publisher.update([offer(10.0)])
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))

    # No broker yet: the publisher keeps retrying without raising.
    await asyncio.sleep(0.6)
    assert not publisher.connected.is_set()
    assert publisher.failed_attempts >= 1

    own_broker.start()
    async with asyncio.timeout(5):
        await publisher.connected.wait()
    assert b'"free_hours":10.0' in await retained_payload(own_broker.port)

    # The broker goes away; the next publish fails and the publisher reconnects to a new one.
    own_broker.stop()
    publisher.update([offer(20.0)])
    await asyncio.sleep(0.5)
    assert not publisher.connected.is_set()
    own_broker.start()
    async with asyncio.timeout(5):
        await publisher.connected.wait()
    assert b'"free_hours":20.0' in await retained_payload(own_broker.port)

    stop.set()
    await asyncio.wait_for(task, 5)
    messages = [record.getMessage() for record in caplog.records]
    unreachable = [message for message in messages if "cannot be established" in message]
    lost = [message for message in messages if " lost " in message]
    restored = [message for message in messages if "restored" in message]
    assert len(unreachable) == 1
    assert "retrying in 0." in unreachable[0]
    assert len(lost) == 1
    assert len(restored) == 2
