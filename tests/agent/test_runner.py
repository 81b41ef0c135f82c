"""The agent end to end against Mosquitto: adapters in, retained offers out, policy enforced."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import aiomqtt
import pytest

import agent.config
from adapters.base import Adapter, AdapterSettings, MachineStatus, Observation
from adapters.registry import load_adapter_class
from agent.config import load_config
from agent.runner import Agent
from kooperant.protocol import MachineState, offer_topic, status_topic

pytestmark = pytest.mark.mosquitto

SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
# Monday 2026-03-02 10:00 in Warsaw, inside the 06:00-14:00 shift.
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


class FakeSettings(AdapterSettings):
    resources: tuple[str, ...]


class FakeMachines(Adapter[FakeSettings]):
    """Reports every configured resource as a machine in ``state``; tests change ``state``."""

    settings_model = FakeSettings
    instances: ClassVar[list[FakeMachines]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.state = MachineState.NOT_EXECUTING
        self.stopped = False
        FakeMachines.instances.append(self)

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [
            MachineStatus(resource, self.state, since=SINCE, name=f"Machine {resource}")
            for resource in self.settings.resources
        ]

    async def stop(self) -> None:
        self.stopped = True


class BrokenAdapter(FakeMachines):
    async def start(self) -> None:
        raise ConnectionRefusedError("source unreachable")


@pytest.fixture(autouse=True)
def fake_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = {"fake": FakeMachines, "broken": BrokenAdapter}

    def lookup(name: str) -> type[Adapter[Any]]:
        return lookups.get(name) or load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)
    FakeMachines.instances.clear()


def write_config(folder: Path, broker_url: str, cluster: str) -> Path:
    (folder / "policy.yaml").write_text(
        "share:\n  - resource: cnc-shared\n    fields: [name, state, free_hours]\n",
        encoding="utf-8",
    )
    path = folder / "agent.yaml"
    text = f"""
        member: acme
        cluster: {cluster}
        publish_interval_seconds: 60
        broker:
          url: {broker_url}
          client_id: {cluster}-agent
          session_expiry_seconds: 0
        policy: policy.yaml
        adapters:
          - type: fake
            name: hall
            resources: [cnc-shared, cnc-private]
          - type: broken
            name: unreachable
            resources: [cnc-other]
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
async def subscriber(mosquitto_url: str, cluster_id: str) -> AsyncIterator[aiomqtt.Client]:
    """A client subscribed to everything under the test's cluster; clears its topics after."""
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-sub") as client:
        await client.subscribe(f"kooperant/v1/{cluster_id}/#", qos=1)
        yield client
        for resource in ("cnc-shared", "cnc-private", "cnc-other"):
            topic = offer_topic(cluster_id, "acme", resource)
            await client.publish(topic, b"", qos=1, retain=True)
        await client.publish(status_topic(cluster_id, "acme"), b"", qos=1, retain=True)


async def next_offer(
    client: aiomqtt.Client, seen: list[str], max_seconds: float = 5.0
) -> dict[str, Any]:
    async with asyncio.timeout(max_seconds):
        async for message in client.messages:
            if str(message.topic).endswith("/status"):
                continue
            seen.append(str(message.topic))
            if message.payload:
                assert isinstance(message.payload, bytes)
                data: dict[str, Any] = json.loads(message.payload)
                return data
    raise AssertionError("subscription ended")


async def test_agent_publishes_only_permitted_offers(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, subscriber: aiomqtt.Client
) -> None:
    config = load_config(write_config(tmp_path, mosquitto_url, cluster_id), {})
    runner = Agent(config, clock=lambda: NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    seen: list[str] = []

    first = await next_offer(subscriber, seen)

    shared_topic = offer_topic(cluster_id, "acme", "cnc-shared")
    assert seen == [shared_topic]
    assert first["schema"] == "kooperant.offer/1.2"
    assert first["accepts_requests"] is True
    assert first["state"] == "NotExecuting"
    assert first["name"] == "Machine cnc-shared"
    # Horizon Mon 10:00 Warsaw + 14 days: 12 h today, 9 full weekdays, 4 h on the last Monday.
    assert first["free_hours"] == 12 + 9 * 16 + 4
    assert "free_intervals" not in first
    assert "horizon" not in first

    loop = asyncio.get_running_loop()
    FakeMachines.instances[0].state = MachineState.OUT_OF_SERVICE
    changed_at = loop.time()
    runner.notify_changed()
    second = await next_offer(subscriber, seen)

    assert loop.time() - changed_at < 1.5
    assert second["state"] == "OutOfService"
    # Down until the end of the current shift at 14:00: 4 hours fewer.
    assert second["free_hours"] == first["free_hours"] - 4

    # An unchanged offer is not sent again before the full republish interval.
    runner.notify_changed()
    with pytest.raises(TimeoutError):
        await next_offer(subscriber, seen, max_seconds=1.5)
    stop.set()
    await asyncio.wait_for(task, 15)

    assert seen == [shared_topic, shared_topic]
    assert all(instance.stopped for instance in FakeMachines.instances)
    assert runner.publisher.published_messages == 2


async def test_offer_is_retained(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, subscriber: aiomqtt.Client
) -> None:
    config = load_config(write_config(tmp_path, mosquitto_url, cluster_id), {})
    stop = asyncio.Event()
    task = asyncio.create_task(Agent(config, clock=lambda: NOW).run(stop))
    await next_offer(subscriber, [])
    stop.set()
    await asyncio.wait_for(task, 15)

    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-late") as late:
        await late.subscribe(f"kooperant/v1/{cluster_id}/#", qos=1)
        async with asyncio.timeout(5):
            async for message in late.messages:
                if not str(message.topic).endswith("/status"):
                    break

    assert message.retain
    assert str(message.topic) == offer_topic(cluster_id, "acme", "cnc-shared")
