"""The agent's choice of MQTT version with ``broker.protocol: auto`` (the default).

The embedded amqtt 0.12 broker sends no CONNACK to an MQTT 5 CONNECT. So with it ``auto`` falls
back to MQTT 3.1.1, and a fixed ``"5"`` never connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.audit import AuditLog
from agent.config import BrokerSettings
from agent.outbox import Outbox
from agent.publisher import Publisher
from kooperant.mqtt import ConnectOptions, MqttSession, ProtocolNotAccepted
from kooperant.protocol import Offer, ResourceKind
from server.broker import EmbeddedBroker

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
CLUSTER = "protocol-test"
MEMBER = "acme"
FALLBACK_LOG = "did not accept MQTT 5"


def make_publisher(port: int, log: AuditLog, protocol: str) -> Publisher:
    settings = BrokerSettings.model_validate(
        {
            "url": f"mqtt://127.0.0.1:{port}",
            "protocol": protocol,
            "connect_timeout_seconds": 1,
            "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.2,
        }
    )
    return Publisher(
        settings,
        f"kooperant-agent-{MEMBER}",
        cluster=CLUSTER,
        member=MEMBER,
        audit_log=log,
        outbox=Outbox(log.path),
        clock=lambda: NOW,
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


async def settle(condition: Callable[[], bool], max_seconds: float = 15.0) -> None:
    """Wait until ``condition`` holds; it is checked every 20 ms, because nothing signals it."""
    async with asyncio.timeout(max_seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_session_without_connack_raises(free_port: int) -> None:
    options = ConnectOptions("127.0.0.1", free_port, "no-answer", connect_timeout_seconds=1)
    async with EmbeddedBroker("127.0.0.1", free_port):
        with pytest.raises(ProtocolNotAccepted, match="no CONNACK within 1 s"):
            async with MqttSession(options):
                pass


async def test_auto_falls_back_to_mqtt_311(
    tmp_path: Path, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="agent.publisher")
    offer = Offer(CLUSTER, MEMBER, "cnc-1", ResourceKind.MACHINE, NOW, free_hours=4.0)

    async with EmbeddedBroker("127.0.0.1", free_port):
        with AuditLog(tmp_path / "audit.db") as log:
            publisher = make_publisher(free_port, log, "auto")
            async with running(publisher):
                publisher.update([offer])
                await settle(lambda: publisher.published_messages >= 1)

    fallbacks = [r.getMessage() for r in caplog.records if FALLBACK_LOG in r.getMessage()]
    assert len(fallbacks) == 1
    assert "using MQTT 3.1.1 from now on" in fallbacks[0]


async def test_fixed_mqtt5_does_not_fall_back(
    tmp_path: Path, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="agent.publisher")
    async with EmbeddedBroker("127.0.0.1", free_port):
        with AuditLog(tmp_path / "audit.db") as log:
            publisher = make_publisher(free_port, log, "5")
            async with running(publisher):
                await settle(lambda: publisher.failed_attempts >= 1)
                assert not publisher.connected.is_set()

    assert not [r for r in caplog.records if FALLBACK_LOG in r.getMessage()]
    assert publisher.published_messages == 0


def test_protocol_defaults_to_auto() -> None:
    settings = BrokerSettings(url="mqtt://127.0.0.1:1883")

    assert settings.protocol == "auto"
    assert settings.connect_timeout_seconds == 10.0


def test_protocol_rejects_unknown_version() -> None:
    with pytest.raises(ValueError, match="protocol"):
        BrokerSettings.model_validate({"url": "mqtt://127.0.0.1:1883", "protocol": "4"})
