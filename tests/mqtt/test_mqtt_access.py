"""MqttSession against an own Mosquitto with a password file and an ACL file."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from kooperant.mqtt import MqttSession, NotAuthorized, PublishRejected
from tests.mqtt.conftest import make_broker, options_for, receive
from tests.support.mosquitto import OwnMosquitto

# How long a denied subscriber is watched for a message it must not get.
DENIED_WAIT_SECONDS = 0.5
PASSWORDS = {"acme": "acme-password", "aggregator": "aggregator-password"}
ACL = """\
user acme
topic write kooperant/v1/c1/acme/#

user aggregator
topic read kooperant/v1/#
"""


def write_password_file(path: Path) -> None:
    for number, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if number == 0 else []
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(path), user, password],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    folder = tmp_path / "broker"
    folder.mkdir()
    password_file = folder / "passwords"
    write_password_file(password_file)
    acl_file = folder / "acl"
    acl_file.write_text(ACL)
    broker = make_broker(folder, password_file=password_file, acl_file=acl_file)
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_wrong_password_not_authorized(
    broker: OwnMosquitto, protocol: Literal["5", "3.1.1"]
) -> None:
    options = options_for(broker.port, username="acme", password="guess", protocol=protocol)

    with pytest.raises(NotAuthorized, match=f"127.0.0.1:{broker.port}") as raised:
        async with MqttSession(options):
            pass

    assert "guess" not in str(raised.value)
    assert str(raised.value).startswith(
        f"MQTT broker 127.0.0.1:{broker.port} rejected client '{options.client_id}' (user 'acme'): "
    )
    assert "check" not in str(raised.value)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_anonymous_client_not_authorized(
    broker: OwnMosquitto, protocol: Literal["5", "3.1.1"]
) -> None:
    options = options_for(broker.port, protocol=protocol)

    with pytest.raises(NotAuthorized) as raised:
        async with MqttSession(options):
            pass

    assert str(raised.value).startswith(
        f"MQTT broker 127.0.0.1:{broker.port} rejected client '{options.client_id}': "
    )
    assert "user" not in str(raised.value)


async def test_acl_allows_own_topic(broker: OwnMosquitto) -> None:
    aggregator = options_for(broker.port, username="aggregator", password=PASSWORDS["aggregator"])
    acme = options_for(broker.port, username="acme", password=PASSWORDS["acme"])
    async with MqttSession(aggregator) as reader:
        await reader.subscribe(["kooperant/v1/#"])
        async with MqttSession(acme) as member:
            await member.publish("kooperant/v1/c1/acme/offers/x", b"own")
        (message,) = await receive(reader, 1)

    assert message.topic == "kooperant/v1/c1/acme/offers/x"


async def test_acl_rejects_other_member_topic(broker: OwnMosquitto) -> None:
    aggregator = options_for(broker.port, username="aggregator", password=PASSWORDS["aggregator"])
    acme = options_for(broker.port, username="acme", password=PASSWORDS["acme"])
    async with MqttSession(aggregator) as reader:
        await reader.subscribe(["kooperant/v1/#"])
        async with MqttSession(acme) as member:
            with pytest.raises(PublishRejected) as raised:
                await member.publish("kooperant/v1/c1/other/offers/x", b"forged")
            await member.publish("kooperant/v1/c1/acme/offers/x", b"own")
        (message,) = await receive(reader, 1)

    assert raised.value.topic == "kooperant/v1/c1/other/offers/x"
    assert "0x87" in raised.value.reason
    assert message.payload == b"own"


async def test_acl_denied_subscription_granted(broker: OwnMosquitto) -> None:
    # NOTE: Mosquitto 2.0.11 grants a subscription its acl_file denies (SUBACK 0x01 for MQTT 5
    # and 3.1.1, also with "topic deny") and only withholds the messages, so SubscribeRejected
    # is not raised here. Read access shows only in what is delivered, as checked below.
    acme = options_for(broker.port, username="acme", password=PASSWORDS["acme"])
    aggregator = options_for(broker.port, username="aggregator", password=PASSWORDS["aggregator"])
    async with MqttSession(acme) as member, MqttSession(aggregator) as reader:
        await member.subscribe(["kooperant/v1/#"])
        await reader.subscribe(["kooperant/v1/#"])
        await member.publish("kooperant/v1/c1/acme/offers/x", b"own")
        (seen_by_reader,) = await receive(reader, 1)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(member.messages())), DENIED_WAIT_SECONDS)

    assert seen_by_reader.payload == b"own"
