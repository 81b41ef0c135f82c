"""Shared subscriptions: the broker splits one stream between the sessions of a group."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kooperant.mqtt import MqttSession, ReceivedMessage
from tests.mqtt.conftest import RECEIVE_TIMEOUT_SECONDS, options_for

pytestmark = pytest.mark.mosquitto

MESSAGE_COUNT = 100


async def test_shared_subscription_splits_messages(machine_broker: int, topic_root: str) -> None:
    shared_filter = f"$share/g{uuid.uuid4().hex[:8]}/{topic_root}/#"
    received: dict[str, list[ReceivedMessage]] = {"first": [], "second": []}
    all_arrived = asyncio.Event()

    async def collect(name: str, session: MqttSession) -> None:
        async for message in session.messages():
            received[name].append(message)
            if sum(len(messages) for messages in received.values()) == MESSAGE_COUNT:
                all_arrived.set()

    async with (
        MqttSession(options_for(machine_broker)) as first,
        MqttSession(options_for(machine_broker)) as second,
        MqttSession(options_for(machine_broker)) as publisher,
    ):
        await first.subscribe([shared_filter])
        await second.subscribe([shared_filter])
        readers = [
            asyncio.create_task(collect("first", first)),
            asyncio.create_task(collect("second", second)),
        ]
        for number in range(MESSAGE_COUNT):
            await publisher.publish(f"{topic_root}/{number}", str(number).encode())

        await asyncio.wait_for(all_arrived.wait(), RECEIVE_TIMEOUT_SECONDS)
        for reader in readers:
            reader.cancel()

    first_payloads = {message.payload for message in received["first"]}
    second_payloads = {message.payload for message in received["second"]}
    assert first_payloads & second_payloads == set()
    assert first_payloads | second_payloads == {str(n).encode() for n in range(MESSAGE_COUNT)}
    assert len(received["first"]) + len(received["second"]) == MESSAGE_COUNT
    assert received["first"] != []
    assert received["second"] != []
