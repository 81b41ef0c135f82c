"""Capacity requests end to end against Mosquitto: received, answered, accepted and held."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from typer.testing import CliRunner

import agent.config
import agent.publisher
from adapters.base import Adapter, AdapterSettings, MachineStatus, Observation
from adapters.registry import load_adapter_class
from agent.cli import app
from agent.config import load_config
from agent.runner import Agent
from agent.status import RequestCounts
from kooperant.intervals import Interval
from kooperant.protocol import MachineState, offer_topic, status_topic
from kooperant.protocol.topics import answer_topic, request_topic
from tests.agent.request_samples import MEMBER, REQUEST_ID, record_offer, slot_request

pytestmark = pytest.mark.mosquitto

# Monday 2026-03-02 10:00 in Warsaw, inside the 06:00-14:00 shift.
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
# Tuesday 08:00-12:00 in Warsaw, inside that day's shift.
SLOT = Interval(datetime(2026, 3, 3, 7, tzinfo=UTC), datetime(2026, 3, 3, 11, tzinfo=UTC))
RESOURCE = "cnc-shared"


class OneMachine(Adapter[AdapterSettings]):
    """Reports ``cnc-shared`` as a machine that is idle."""

    settings_model = AdapterSettings

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [MachineStatus(RESOURCE, MachineState.NOT_EXECUTING, since=NOW)]

    async def stop(self) -> None:
        pass


class SilentMachine(OneMachine):
    """Reports nothing, like a machine whose OPC UA server has not answered yet."""

    def collect(self) -> list[Observation]:
        return []


@pytest.fixture(autouse=True)
def fake_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> type[Adapter[Any]]:
        if name == "one-machine":
            return OneMachine
        if name == "silent-machine":
            return SilentMachine
        return load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)


def write_config(
    folder: Path,
    broker_url: str,
    cluster: str,
    session_expiry_seconds: int = 0,
    adapter: str = "one-machine",
) -> Path:
    (folder / "policy.yaml").write_text(
        f"share:\n  - resource: {RESOURCE}\n    fields: [state, free_hours, free_intervals]\n",
        encoding="utf-8",
    )
    path = folder / "agent.yaml"
    text = f"""
        member: {MEMBER}
        cluster: {cluster}
        publish_interval_seconds: 60
        broker:
          url: {broker_url}
          client_id: {cluster}-agent
          session_expiry_seconds: {session_expiry_seconds}
        policy: policy.yaml
        audit_log: audit.db
        adapters:
          - type: {adapter}
            name: hall
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
async def subscriber(cluster_id: str) -> AsyncIterator[aiomqtt.Client]:
    """A client subscribed to the member's topics; clears the retained ones after the test."""
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-sub") as client:
        await client.subscribe(f"kooperant/v1/{cluster_id}/{MEMBER}/#", qos=1)
        yield client
        for topic in (
            offer_topic(cluster_id, MEMBER, RESOURCE),
            request_topic(cluster_id, MEMBER, REQUEST_ID),
            answer_topic(cluster_id, MEMBER, REQUEST_ID),
            status_topic(cluster_id, MEMBER),
        ):
            await client.publish(topic, b"", qos=1, retain=True)


class Received:
    """Every message the subscriber received, in order, collected in the background."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._client = client
        self._arrived = asyncio.Event()

    async def collect(self) -> None:
        async for message in self._client.messages:
            assert isinstance(message.payload, bytes)
            self.messages.append((str(message.topic), message.payload))
            self._arrived.set()

    async def first(
        self, topic: str, accept: Callable[[bytes], bool], after: int = 0, max_seconds: float = 10.0
    ) -> tuple[int, bytes]:
        """Return the index and payload of the first message on ``topic`` from ``after`` on
        that ``accept`` takes, waiting for it."""
        async with asyncio.timeout(max_seconds):
            while True:
                for index in range(after, len(self.messages)):
                    found, payload = self.messages[index]
                    if found == topic and accept(payload):
                        return index, payload
                self._arrived.clear()
                await self._arrived.wait()


def answer_state(state: str) -> Callable[[bytes], bool]:
    return lambda payload: bool(payload) and json.loads(payload)["state"] == state


def free_intervals(payload: bytes) -> list[tuple[str, str]]:
    data = json.loads(payload)
    return [(item["start"], item["end"]) for item in data["free_intervals"]]


def covers(intervals: list[tuple[str, str]], slot: Interval) -> bool:
    return any(
        datetime.fromisoformat(start) <= slot.start and slot.end <= datetime.fromisoformat(end)
        for start, end in intervals
    )


async def test_request_accepted_removes_slot(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, subscriber: aiomqtt.Client
) -> None:
    config_path = write_config(tmp_path, mosquitto_url, cluster_id)
    # An earlier run published the offer, taking requests.
    record_offer(tmp_path / "audit.db", cluster_id, RESOURCE, accepts_requests=True)
    request = slot_request(
        cluster_id, resource=RESOURCE, slot=SLOT, expires_in=timedelta(days=3650)
    )
    requests = request_topic(cluster_id, MEMBER, REQUEST_ID)
    answers = answer_topic(cluster_id, MEMBER, REQUEST_ID)
    offers = offer_topic(cluster_id, MEMBER, RESOURCE)
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-aggregator") as sender:
        await sender.publish(requests, request.to_payload(), qos=1, retain=True)

    received = Received(subscriber)
    collector = asyncio.create_task(received.collect())
    stop = asyncio.Event()
    runner = Agent(load_config(config_path, {}), clock=lambda: NOW, poll_seconds=0.1)
    task = asyncio.create_task(runner.run(stop))
    try:
        _, delivered = await received.first(answers, answer_state("delivered"))
        _, first_offer = await received.first(offers, bool)
        before_accept = len(received.messages)

        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["accept", REQUEST_ID[:8], "--config", str(config_path)]
        )
        _, accepted = await received.first(answers, answer_state("accepted"), before_accept, 5.0)
        _, held_offer = await received.first(offers, bool, before_accept, 5.0)
        counts = runner.status().requests

        before_clear = len(received.messages)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-agg2") as sender:
            await sender.publish(requests, b"", qos=1, retain=True)
        _, cleared = await received.first(answers, lambda payload: True, before_clear, 5.0)
    finally:
        stop.set()
        await task
        collector.cancel()

    assert json.loads(delivered)["resource"] == RESOURCE
    assert json.loads(delivered)["message_id"]
    assert covers(free_intervals(first_offer), SLOT)
    assert result.exit_code == 0, result.output
    assert json.loads(accepted)["seq"] > json.loads(delivered)["seq"]
    assert not covers(free_intervals(held_offer), SLOT)
    assert ("2026-03-03T07:00:00Z", "2026-03-03T11:00:00Z") not in free_intervals(held_offer)
    assert json.loads(held_offer)["free_hours"] == json.loads(first_offer)["free_hours"] - 4
    assert counts == RequestCounts(open=0, held=1, invalid=0)
    assert cleared == b""


async def test_request_sent_while_offline_arrives(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, subscriber: aiomqtt.Client
) -> None:
    config_path = write_config(tmp_path, mosquitto_url, cluster_id, session_expiry_seconds=60)
    record_offer(tmp_path / "audit.db", cluster_id, RESOURCE, accepts_requests=True)
    request = slot_request(
        cluster_id, resource=RESOURCE, slot=SLOT, expires_in=timedelta(days=3650)
    )
    answers = answer_topic(cluster_id, MEMBER, REQUEST_ID)
    received = Received(subscriber)
    collector = asyncio.create_task(received.collect())
    config = load_config(config_path, {})

    # The first run leaves a session on the broker with the request subscription in it.
    stop = asyncio.Event()
    first = Agent(config, clock=lambda: NOW, poll_seconds=0.1)
    task = asyncio.create_task(first.run(stop))
    await received.first(offer_topic(cluster_id, MEMBER, RESOURCE), bool)
    stop.set()
    await task
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-aggregator") as sender:
        # Not retained, so only the kept session can bring it to the agent.
        await sender.publish(
            request_topic(cluster_id, MEMBER, REQUEST_ID), request.to_payload(), qos=1
        )

    stop = asyncio.Event()
    second = Agent(config, clock=lambda: NOW, poll_seconds=0.1)
    task = asyncio.create_task(second.run(stop))
    try:
        _, delivered = await received.first(answers, answer_state("delivered"))
    finally:
        stop.set()
        await task
        collector.cancel()

    assert json.loads(delivered)["request_id"] == REQUEST_ID


@pytest.mark.parametrize("adapter", ["one-machine", "silent-machine"])
async def test_request_declined_after_policy_change_offline(
    tmp_path: Path, mosquitto_url: str, cluster_id: str, subscriber: aiomqtt.Client, adapter: str
) -> None:
    config_path = write_config(
        tmp_path, mosquitto_url, cluster_id, session_expiry_seconds=60, adapter=adapter
    )
    # The last run sent the offer taking requests; then the owner switched requests off.
    record_offer(tmp_path / "audit.db", cluster_id, RESOURCE, accepts_requests=True)
    (tmp_path / "policy.yaml").write_text(
        f"share:\n  - resource: {RESOURCE}\n    fields: [state]\n    requests: false\n",
        encoding="utf-8",
    )
    request = slot_request(
        cluster_id, resource=RESOURCE, slot=SLOT, expires_in=timedelta(days=3650)
    )
    answers = answer_topic(cluster_id, MEMBER, REQUEST_ID)
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-aggregator") as sender:
        await sender.publish(
            request_topic(cluster_id, MEMBER, REQUEST_ID), request.to_payload(), qos=1, retain=True
        )

    received = Received(subscriber)
    collector = asyncio.create_task(received.collect())
    stop = asyncio.Event()
    runner = Agent(load_config(config_path, {}), clock=lambda: NOW, poll_seconds=0.1)
    task = asyncio.create_task(runner.run(stop))
    try:
        _, answer = await received.first(answers, bool)
    finally:
        stop.set()
        await task
        collector.cancel()

    assert json.loads(answer)["state"] == "declined"
    assert json.loads(answer)["reason"] == (
        "Właściciel nie przyjmuje zapytań o tę ofertę. / The owner does not take requests for "
        "this offer."
    )
