"""MqttSession against the machine's Mosquitto: delivery, persistent sessions, acks and wills."""

from __future__ import annotations

import asyncio
import socket
from typing import Literal

import pytest

from kooperant.mqtt import (
    RECEIVE_MAXIMUM,
    ConnectFailed,
    ConnectOptions,
    MqttError,
    MqttSession,
    WillMessage,
)
from kooperant.net import free_tcp_port
from tests.mqtt.conftest import client_id, options_for, paho_threads, receive

pytestmark = pytest.mark.mosquitto

PROTOCOLS: list[Literal["5", "3.1.1"]] = ["5", "3.1.1"]


async def test_session_round_trip(machine_broker: int, topic_root: str) -> None:
    async with MqttSession(options_for(machine_broker)) as session:
        await session.subscribe([f"{topic_root}/#"])
        await session.publish(f"{topic_root}/a", b"first", qos=1)
        await session.publish(f"{topic_root}/b", b"second", qos=0)

        received = await receive(session, 2)

    assert [message.topic for message in received] == [f"{topic_root}/a", f"{topic_root}/b"]
    assert [message.payload for message in received] == [b"first", b"second"]
    assert [message.qos for message in received] == [1, 0]
    assert received[0].retain is False


async def test_session_retained_message_flag(machine_broker: int, topic_root: str) -> None:
    topic = f"{topic_root}/retained"
    async with MqttSession(options_for(machine_broker)) as publisher:
        await publisher.publish(topic, b"kept", retain=True)

    try:
        async with MqttSession(options_for(machine_broker)) as subscriber:
            await subscriber.subscribe([topic])
            (message,) = await receive(subscriber, 1)
    finally:
        async with MqttSession(options_for(machine_broker)) as cleaner:
            await cleaner.publish(topic, b"", retain=True)

    assert message.payload == b"kept"
    assert message.retain is True


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_persistent_session_queues_messages(
    machine_broker: int, topic_root: str, protocol: Literal["5", "3.1.1"]
) -> None:
    persistent = options_for(
        machine_broker,
        client_id=client_id(f"persistent-{protocol}"),
        protocol=protocol,
        clean_start=False,
        session_expiry_seconds=120,
    )
    async with MqttSession(persistent) as first:
        await first.subscribe([f"{topic_root}/#"])
        first_session_present = first.session_present

    async with MqttSession(options_for(machine_broker)) as publisher:
        for number in range(20):
            await publisher.publish(f"{topic_root}/{number}", str(number).encode())

    try:
        async with MqttSession(persistent) as second:
            received = await receive(second, 20)
            second_session_present = second.session_present
    finally:
        # A clean start drops the kept session, which MQTT 3.1.1 would keep with no expiry.
        async with MqttSession(
            options_for(machine_broker, client_id=persistent.client_id, protocol=protocol)
        ):
            pass

    assert first_session_present is False
    assert second_session_present is True
    assert [message.payload for message in received] == [str(n).encode() for n in range(20)]


async def test_clean_start_discards_session(machine_broker: int, topic_root: str) -> None:
    persistent = options_for(machine_broker, clean_start=False, session_expiry_seconds=60)
    async with MqttSession(persistent) as first:
        await first.subscribe([f"{topic_root}/#"])

    async with MqttSession(options_for(machine_broker, client_id=persistent.client_id)) as second:
        assert second.session_present is False


async def test_manual_ack_redelivers_unacked(machine_broker: int, topic_root: str) -> None:
    options = options_for(
        machine_broker, clean_start=False, session_expiry_seconds=60, manual_ack=True
    )
    async with MqttSession(options) as first:
        await first.subscribe([f"{topic_root}/#"])
        async with MqttSession(options_for(machine_broker)) as publisher:
            await publisher.publish(f"{topic_root}/acked", b"acked")
            await publisher.publish(f"{topic_root}/unacked", b"unacked")
        acked, _unacked = await receive(first, 2)
        first.ack(acked)

    async with MqttSession(options) as second:
        async with MqttSession(options_for(machine_broker)) as publisher:
            await publisher.publish(f"{topic_root}/later", b"later")
        received = await receive(second, 2)
        for message in received:
            second.ack(message)

    assert second.session_present is True
    assert [message.payload for message in received] == [b"unacked", b"later"]


async def test_will_sent_after_abort(machine_broker: int, topic_root: str) -> None:
    will_topic = f"{topic_root}/status"
    will = WillMessage(topic=will_topic, payload=b"offline", retain=False)
    async with MqttSession(options_for(machine_broker)) as watcher:
        await watcher.subscribe([will_topic])

        async with MqttSession(options_for(machine_broker, will=will)) as member:
            member.abort()

        (message,) = await receive(watcher, 1)

    assert message.payload == b"offline"


async def test_will_not_sent_after_disconnect(machine_broker: int, topic_root: str) -> None:
    will_topic = f"{topic_root}/status"
    will = WillMessage(topic=will_topic, payload=b"offline", retain=False)
    async with MqttSession(options_for(machine_broker)) as watcher:
        await watcher.subscribe([will_topic])

        async with MqttSession(options_for(machine_broker, will=will)) as member:
            await member.publish(will_topic, b"online")
        # Sent after the member's DISCONNECT: a will would have arrived before it.
        await watcher.publish(will_topic, b"marker")

        received = await receive(watcher, 2)

    assert [message.payload for message in received] == [b"online", b"marker"]


async def test_will_sent_when_block_raises(machine_broker: int, topic_root: str) -> None:
    will_topic = f"{topic_root}/status"
    will = WillMessage(topic=will_topic, payload=b"offline", retain=False)
    async with MqttSession(options_for(machine_broker)) as watcher:
        await watcher.subscribe([will_topic])

        with pytest.raises(RuntimeError, match="agent failed"):
            async with MqttSession(options_for(machine_broker, will=will)):
                raise RuntimeError("agent failed")

        (message,) = await receive(watcher, 1)

    assert message.payload == b"offline"


async def test_messages_end_after_disconnect(machine_broker: int, topic_root: str) -> None:
    async with MqttSession(options_for(machine_broker)) as session:
        await session.subscribe([f"{topic_root}/#"])
        reader = asyncio.create_task(receive(session, 1))
        await asyncio.sleep(0)

    received = await asyncio.wait_for(reader, 5)

    assert received == []


async def test_session_unusable_after_disconnect(machine_broker: int, topic_root: str) -> None:
    async with MqttSession(options_for(machine_broker)) as session:
        pass

    with pytest.raises(MqttError, match="not connected"):
        await session.publish(f"{topic_root}/late", b"late")


async def test_connect_closed_port_fails(topic_root: str) -> None:
    port = free_tcp_port()
    options = options_for(port)

    with pytest.raises(ConnectFailed, match=f"127.0.0.1:{port}") as raised:
        async with MqttSession(options):
            pass

    assert "refused" in str(raised.value).lower()
    assert paho_threads() == []


async def test_subscribe_needs_filters(machine_broker: int) -> None:
    async with MqttSession(options_for(machine_broker)) as session:
        with pytest.raises(ValueError, match="at least one topic filter"):
            await session.subscribe([])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"host": ""}, "host is empty"),
        ({"port": 0}, "invalid MQTT port 0"),
        ({"port": 70000}, "invalid MQTT port 70000"),
        ({"protocol": "4"}, "invalid MQTT protocol '4'"),
        ({"session_expiry_seconds": -1}, "invalid session expiry -1 s"),
        ({"session_expiry_seconds": 2**32}, f"invalid session expiry {2**32} s"),
        ({"keepalive_seconds": 0}, "invalid keepalive 0 s"),
        ({"connect_timeout_seconds": 0}, "invalid connect timeout 0 s"),
        ({"password": "secret"}, "password is set without a username"),
    ],
)
def test_connect_options_invalid_values(settings: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"host": "127.0.0.1", "port": 1883, "client_id": "c"}

    with pytest.raises(ValueError, match=message):
        ConnectOptions(**{**base, **settings})  # type: ignore[arg-type]


def test_connect_options_repr_hides_password() -> None:
    options = ConnectOptions(
        host="127.0.0.1", port=1883, client_id="c", username="acme", password="s3cret-value"
    )

    assert "s3cret-value" not in repr(options)
    assert "acme" in repr(options)


@pytest.mark.parametrize(
    ("host", "address"), [("127.0.0.1", "127.0.0.1:1883"), ("::1", "[::1]:1883")]
)
def test_connect_options_address(host: str, address: str) -> None:
    assert ConnectOptions(host=host, port=1883, client_id="c").address == address


def test_will_message_invalid_qos() -> None:
    with pytest.raises(ValueError, match="invalid will qos 3"):
        WillMessage(topic="t", payload=b"", qos=3)


async def test_connect_without_connack_times_out() -> None:
    # A listener that accepts the TCP connection but never sends a CONNACK.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        options = options_for(port, connect_timeout_seconds=0.5)

        with pytest.raises(ConnectFailed, match=f"127.0.0.1:{port} timed out: no CONNACK"):
            async with MqttSession(options):
                pass

    assert paho_threads() == []


async def test_concurrent_publishes_all_acknowledged(machine_broker: int, topic_root: str) -> None:
    # More than paho's 20 messages in flight, so some wait in paho's queue for their turn.
    count = 60
    async with MqttSession(options_for(machine_broker)) as session:
        await session.subscribe([f"{topic_root}/#"])
        await asyncio.gather(
            *(session.publish(f"{topic_root}/{n}", str(n).encode()) for n in range(count))
        )
        received = await receive(session, count)

    assert sorted(int(message.payload) for message in received) == list(range(count))


async def test_manual_ack_limited_by_receive_maximum(machine_broker: int, topic_root: str) -> None:
    count = RECEIVE_MAXIMUM + 20
    async with MqttSession(options_for(machine_broker, manual_ack=True)) as session:
        await session.subscribe([f"{topic_root}/#"])
        async with MqttSession(options_for(machine_broker)) as publisher:
            for number in range(count):
                await publisher.publish(f"{topic_root}/{number}", str(number).encode())

        first = await receive(session, RECEIVE_MAXIMUM)
        # The broker sends no more until one of those is acknowledged.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(session.messages())), 0.5)
        for message in first:
            session.ack(message)
        rest = await receive(session, count - RECEIVE_MAXIMUM)
        for message in rest:
            session.ack(message)

    payloads = [int(message.payload) for message in [*first, *rest]]
    assert payloads == list(range(count))
