"""The embedded amqtt broker: publish/subscribe, free port choice and a taken port."""

from __future__ import annotations

import asyncio
import socket

import aiomqtt
import pytest

from server.broker import EmbeddedBroker
from server.errors import BrokerPortInUseError


async def test_broker_round_trip_on_free_port() -> None:
    async with EmbeddedBroker(port=0) as broker:
        assert broker.port != 0
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"

        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("kooperant/v1/test/+/offers/+", qos=1)
            await client.publish("kooperant/v1/test/acme/offers/cnc", b"hello", qos=1)
            async with asyncio.timeout(5):
                message = await anext(client.messages)

    assert str(message.topic) == "kooperant/v1/test/acme/offers/cnc"
    assert message.payload == b"hello"


async def test_broker_delivers_retained_to_new_subscriber() -> None:
    async with EmbeddedBroker(port=0) as broker:
        async with aiomqtt.Client("127.0.0.1", broker.port) as publisher:
            await publisher.publish(
                "kooperant/v1/test/acme/offers/cnc", b"kept", qos=1, retain=True
            )

        async with aiomqtt.Client("127.0.0.1", broker.port) as subscriber:
            await subscriber.subscribe("kooperant/v1/test/+/offers/+", qos=1)
            async with asyncio.timeout(5):
                message = await anext(subscriber.messages)

    assert message.payload == b"kept"
    assert message.retain


async def test_broker_port_taken_names_address() -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]

        with pytest.raises(BrokerPortInUseError) as raised:
            async with EmbeddedBroker(port=port):
                pass

    message = str(raised.value)
    assert f"127.0.0.1:{port}" in message
    assert "--broker" in message
    assert "--embedded-broker-port" in message
    assert f"127.0.0.1:{port}" in raised.value.localized("pl")
