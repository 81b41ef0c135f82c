"""The example Mosquitto configuration in ``config/mosquitto/``, run as written.

Each test starts a Mosquitto of its own from ``mosquitto.conf`` and ``acl`` with only the ports,
file paths and cluster id replaced, and accounts written by ``server.broker_accounts``. Then
members and the aggregator connect with ``MqttSession`` over TLS as a deployment would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kooperant.mqtt import (
    ConnectFailed,
    ConnectOptions,
    MqttSession,
    NotAuthorized,
    PublishRejected,
    ReceivedMessage,
    SubscribeRejected,
    TlsSettings,
)
from kooperant.protocol.topics import answer_topic, request_subscription, request_topic
from server.broker_accounts import AGGREGATOR_USER, mosquitto_password_line, set_password
from tests.conftest import REPO_ROOT
from tests.support.certificates import CertificateAuthority, CertificateFiles
from tests.support.mosquitto import OwnMosquitto, TlsFiles

CONFIG_FOLDER = REPO_ROOT / "config" / "mosquitto"
PASSWORDS = {"acme": "acme-secret", "other": "other-secret", AGGREGATOR_USER: "aggregator-secret"}
RECEIVE_TIMEOUT_SECONDS = 5.0
RELOAD_TIMEOUT_SECONDS = 5.0


@dataclass
class ClusterBroker:
    """A Mosquitto run from the example configuration, and what a client needs to reach it."""

    broker: OwnMosquitto
    cluster: str
    ca: CertificateAuthority
    password_file: Path

    def options(
        self,
        user: str | None,
        *,
        password: str | None = None,
        tls: bool = True,
        protocol: str = "5",
        client_certificate: CertificateFiles | None = None,
    ) -> ConnectOptions:
        """Return options for ``user`` with its password from ``PASSWORDS`` unless given."""
        tls_settings = None
        if tls:
            tls_settings = TlsSettings(
                ca_file=self.ca.cert_file,
                cert_file=client_certificate.cert_file if client_certificate else None,
                key_file=client_certificate.key_file if client_certificate else None,
            )
        port = self.broker.tls_port if tls else self.broker.port
        assert port is not None
        return ConnectOptions(
            host="127.0.0.1",
            port=port,
            client_id=f"{self.cluster}-{user or 'anonymous'}-{os.urandom(3).hex()}",
            username=user,
            password=password if password is not None else PASSWORDS.get(user or ""),
            tls=tls_settings,
            protocol="5" if protocol == "5" else "3.1.1",
        )

    def topic(self, member: str, resource: str = "cnc-01") -> str:
        return f"kooperant/v1/{self.cluster}/{member}/offers/{resource}"


def example_config(
    broker: OwnMosquitto, tls: TlsFiles, password_file: Path, acl_file: Path, folder: Path
) -> str:
    """Return ``mosquitto.conf`` with this test's ports and paths, asserting each line is found."""
    text = (CONFIG_FOLDER / "mosquitto.conf").read_text()
    replacements = {
        "pid_file /run/mosquitto/mosquitto.pid": f"pid_file {folder}/mosquitto.pid",
        "log_dest file /var/log/mosquitto/mosquitto.log": "log_dest stdout",
        "password_file /etc/mosquitto/kooperant/passwd": f"password_file {password_file}",
        "acl_file /etc/mosquitto/kooperant/acl": f"acl_file {acl_file}",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {folder}/",
        "listener 1883 127.0.0.1": f"listener {broker.port} 127.0.0.1",
        "listener 8883\n": f"listener {broker.tls_port} 127.0.0.1\n",
        "certfile /etc/mosquitto/certs/server.crt": f"certfile {tls.cert_file}",
        "keyfile /etc/mosquitto/certs/server.key": f"keyfile {tls.key_file}",
        "cafile /etc/mosquitto/certs/ca.crt": f"cafile {tls.ca_file}",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not exactly once in the example mosquitto.conf"
        text = text.replace(old, new)
    # Started as root, Mosquitto switches to the user "mosquitto", who cannot read tmp_path.
    return f"user {pwd.getpwuid(os.getuid()).pw_name}\n{text}"


def use_client_certificates(config: str) -> str:
    """Turn on the commented client certificate alternative of the example configuration."""
    for line in ("require_certificate true", "use_identity_as_username true"):
        assert config.count(f"#{line}\n") == 1, f"'#{line}' is not in the example mosquitto.conf"
        config = config.replace(f"#{line}\n", f"{line}\n")
    return config


def start_cluster_broker(
    folder: Path, cluster: str, *, client_certificates: bool = False
) -> ClusterBroker:
    ca = CertificateAuthority.create(folder / "certs")
    server = ca.issue_server()
    tls = TlsFiles(ca_file=ca.cert_file, cert_file=server.cert_file, key_file=server.key_file)

    password_file = folder / "passwd"
    password_file.write_text(
        mosquitto_password_line(AGGREGATOR_USER, PASSWORDS[AGGREGATOR_USER]) + "\n"
    )
    for member in ("acme", "other"):
        set_password(password_file, member, PASSWORDS[member])
    acl_file = folder / "acl"
    acl_text = (CONFIG_FOLDER / "acl").read_text()
    assert "CLUSTER" in acl_text
    acl_file.write_text(acl_text.replace("CLUSTER", cluster))

    broker = OwnMosquitto(folder, tls=tls)
    config = example_config(broker, tls, password_file, acl_file, folder)
    if client_certificates:
        config = use_client_certificates(config)
    # OwnMosquitto starts "mosquitto -c broker.config", so the example replaces its own config.
    broker.config.write_text(config)
    broker.start()
    return ClusterBroker(broker, cluster, ca, password_file)


@pytest.fixture
def cluster_broker(tmp_path: Path, cluster_id: str) -> Iterator[ClusterBroker]:
    started = start_cluster_broker(tmp_path, cluster_id)
    yield started
    started.broker.stop()


@pytest.fixture
async def aggregator(cluster_broker: ClusterBroker) -> AsyncIterator[MqttSession]:
    """The aggregator, subscribed to the whole cluster over TLS."""
    async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as session:
        await session.subscribe([f"kooperant/v1/{cluster_broker.cluster}/#"])
        yield session


async def next_message(session: MqttSession) -> ReceivedMessage:
    return await asyncio.wait_for(anext(aiter(session.messages())), RECEIVE_TIMEOUT_SECONDS)


async def test_member_publishes_own_prefix(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    topic = cluster_broker.topic("acme")

    async with MqttSession(cluster_broker.options("acme")) as member:
        await member.publish(topic, b"offer", retain=True)

    received = await next_message(aggregator)
    assert received.topic == topic
    assert received.payload == b"offer"


async def test_member_status_topic_allowed(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    topic = f"kooperant/v1/{cluster_broker.cluster}/acme/status"

    async with MqttSession(cluster_broker.options("acme")) as member:
        await member.publish(topic, b"online", retain=True)

    received = await next_message(aggregator)
    assert received.topic == topic


async def test_member_other_prefix_rejected_mqtt5(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    forged = cluster_broker.topic("other")
    allowed = cluster_broker.topic("acme")

    async with MqttSession(cluster_broker.options("acme")) as member:
        with pytest.raises(PublishRejected) as caught:
            await member.publish(forged, b"forged")
        await member.publish(allowed, b"own")

    assert caught.value.topic == forged
    assert "not authorized" in caught.value.reason.lower()
    # The aggregator's first message is the allowed one: the forged one never reached it.
    received = await next_message(aggregator)
    assert received.topic == allowed


async def test_member_other_prefix_dropped_mqtt311(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    forged = cluster_broker.topic("other")
    allowed = cluster_broker.topic("acme")

    # MQTT 3.1.1 has no reason code in PUBACK, so the broker acknowledges and drops the message.
    async with MqttSession(cluster_broker.options("acme", protocol="3.1.1")) as member:
        await member.publish(forged, b"forged")
        await member.publish(allowed, b"own")

    received = await next_message(aggregator)
    assert received.topic == allowed


async def test_member_other_cluster_rejected(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    async with MqttSession(cluster_broker.options("acme")) as member:
        with pytest.raises(PublishRejected):
            await member.publish("kooperant/v1/another-cluster/acme/offers/cnc-01", b"x")


async def test_member_cannot_read_other_members(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    other_offer = cluster_broker.topic("other")

    async with MqttSession(cluster_broker.options("acme")) as member:
        # Mosquitto 2.0.11 grants the subscription and checks the ACL on each delivery instead.
        with contextlib.suppress(SubscribeRejected):
            await member.subscribe([f"kooperant/v1/{cluster_broker.cluster}/#"])
        async with MqttSession(cluster_broker.options("other")) as other:
            await other.publish(other_offer, b"offer")
        assert (await next_message(aggregator)).topic == other_offer

        # The broker routed the offer to every subscriber before the aggregator received it, and
        # writes to one client in order, so a delivered offer would arrive before this PUBACK.
        await member.publish(cluster_broker.topic("acme"), b"own")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(member.messages())), 0.2)


@pytest.mark.parametrize("channel", ["offers", "withdrawals", "status", "answers"])
async def test_aggregator_cannot_publish(cluster_broker: ClusterBroker, channel: str) -> None:
    # The aggregator may write requests only, so it cannot forge what members publish.
    topic = f"kooperant/v1/{cluster_broker.cluster}/acme/{channel}"
    if channel != "status":
        topic = f"{topic}/{uuid.uuid4()}"

    async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as session:
        with pytest.raises(PublishRejected):
            await session.publish(topic, b"forged")


async def test_aggregator_request_other_cluster_rejected(cluster_broker: ClusterBroker) -> None:
    topic = request_topic("another-cluster", "acme", str(uuid.uuid4()))

    async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as session:
        with pytest.raises(PublishRejected):
            await session.publish(topic, b"request")


async def test_request_reaches_owner_retained(cluster_broker: ClusterBroker) -> None:
    cluster = cluster_broker.cluster
    topic = request_topic(cluster, "acme", str(uuid.uuid4()))

    # The agent subscribes after the request was published, as an agent that was offline does.
    async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as aggregator:
        await aggregator.publish(topic, b"request", retain=True)
    async with MqttSession(cluster_broker.options("acme")) as agent:
        await agent.subscribe([request_subscription(cluster, "acme")])
        received = await next_message(agent)

    assert received.topic == topic
    assert received.payload == b"request"
    assert received.retain


async def test_aggregator_clears_request(cluster_broker: ClusterBroker) -> None:
    cluster = cluster_broker.cluster
    cleared = request_topic(cluster, "acme", str(uuid.uuid4()))
    pending = request_topic(cluster, "acme", str(uuid.uuid4()))

    async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as aggregator:
        await aggregator.publish(cleared, b"request", retain=True)
        await aggregator.publish(cleared, b"", retain=True)
        await aggregator.publish(pending, b"request", retain=True)
    async with MqttSession(cluster_broker.options("acme")) as agent:
        await agent.subscribe([request_subscription(cluster, "acme")])
        received = await next_message(agent)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(agent.messages())), 0.2)

    # Only the request that was not cleared is still retained.
    assert received.topic == pending


async def test_member_cannot_read_other_requests(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    cluster = cluster_broker.cluster
    topic = request_topic(cluster, "acme", str(uuid.uuid4()))

    async with (
        MqttSession(cluster_broker.options("acme")) as owner,
        MqttSession(cluster_broker.options("other")) as other,
    ):
        await owner.subscribe([request_subscription(cluster, "acme")])
        # Mosquitto 2.0.11 grants the subscription and checks the ACL on each delivery instead.
        with contextlib.suppress(SubscribeRejected):
            await other.subscribe(
                [request_subscription(cluster, "acme"), f"kooperant/v1/{cluster}/+/requests/#"]
            )
        await aggregator.publish(topic, b"request", retain=True)
        assert (await next_message(owner)).topic == topic

        # The broker routed the request to every subscriber before the owner received it, and
        # writes to one client in order, so a delivered request would arrive before this PUBACK.
        await other.publish(cluster_broker.topic("other"), b"own")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(other.messages())), 0.2)

        # A new subscription does not get the retained request either.
        with contextlib.suppress(SubscribeRejected):
            await other.subscribe([topic])
        await other.publish(cluster_broker.topic("other"), b"own")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(other.messages())), 0.2)


async def test_member_cannot_write_other_requests(cluster_broker: ClusterBroker) -> None:
    topic = request_topic(cluster_broker.cluster, "acme", str(uuid.uuid4()))

    async with MqttSession(cluster_broker.options("other")) as other:
        with pytest.raises(PublishRejected):
            await other.publish(topic, b"forged", retain=True)


async def test_member_answer_reaches_aggregator(
    cluster_broker: ClusterBroker, aggregator: MqttSession
) -> None:
    topic = answer_topic(cluster_broker.cluster, "acme", str(uuid.uuid4()))

    async with MqttSession(cluster_broker.options("acme")) as agent:
        await agent.publish(topic, b"answer", retain=True)

    received = await next_message(aggregator)
    assert received.topic == topic
    assert received.payload == b"answer"


async def test_aggregator_shared_subscription_receives(cluster_broker: ClusterBroker) -> None:
    shared = f"$share/ingest/kooperant/v1/{cluster_broker.cluster}/+/offers/+"
    topic = cluster_broker.topic("acme")

    async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as worker:
        await worker.subscribe([shared])
        async with MqttSession(cluster_broker.options("acme")) as member:
            await member.publish(topic, b"offer")
        received = await next_message(worker)

    assert received.topic == topic


async def test_shared_subscription_gets_retained(cluster_broker: ClusterBroker) -> None:
    # MQTT 5 sends retained messages only for a new non-shared subscription, but Mosquitto 2.0.11
    # sends them to every worker that joins a shared subscription, as docs/deployment.md describes.
    shared = f"$share/ingest/kooperant/v1/{cluster_broker.cluster}/+/offers/+"
    retained = cluster_broker.topic("acme", "retained-offer")

    async with MqttSession(cluster_broker.options("acme")) as member:
        await member.publish(retained, b"offer", retain=True)
    received = []
    for _ in range(2):
        async with MqttSession(cluster_broker.options(AGGREGATOR_USER)) as worker:
            await worker.subscribe([shared])
            received.append(await next_message(worker))

    assert [message.topic for message in received] == [retained, retained]
    assert all(message.retain for message in received)


async def test_aggregator_reads_over_loopback(cluster_broker: ClusterBroker) -> None:
    topic = cluster_broker.topic("acme")

    async with MqttSession(cluster_broker.options(AGGREGATOR_USER, tls=False)) as session:
        await session.subscribe([f"kooperant/v1/{cluster_broker.cluster}/#"])
        async with MqttSession(cluster_broker.options("acme")) as member:
            await member.publish(topic, b"offer")
        received = await next_message(session)

    assert received.topic == topic


async def test_plain_mqtt_on_tls_port_fails(cluster_broker: ClusterBroker) -> None:
    options = cluster_broker.options("acme", tls=False)
    tls_port = cluster_broker.broker.tls_port
    assert tls_port is not None
    plain_to_tls_port = ConnectOptions(
        host=options.host,
        port=tls_port,
        client_id=options.client_id,
        username=options.username,
        password=options.password,
        connect_timeout_seconds=3.0,
    )

    with pytest.raises(ConnectFailed) as caught:
        async with MqttSession(plain_to_tls_port):
            pass

    assert not isinstance(caught.value, NotAuthorized)
    assert f"127.0.0.1:{tls_port}" in str(caught.value)


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("acme", "wrong-secret"),
        ("acme", "other-secret"),
        ("nobody", "acme-secret"),
    ],
)
async def test_bad_credentials_not_authorized(
    cluster_broker: ClusterBroker, user: str, password: str
) -> None:
    with pytest.raises(NotAuthorized):
        async with MqttSession(cluster_broker.options(user, password=password)):
            pass


@pytest.mark.parametrize("tls", [True, False])
async def test_anonymous_not_authorized(cluster_broker: ClusterBroker, tls: bool) -> None:
    with pytest.raises(NotAuthorized):
        async with MqttSession(cluster_broker.options(None, tls=tls)):
            pass


async def test_password_file_reload_applies_change(cluster_broker: ClusterBroker) -> None:
    set_password(cluster_broker.password_file, "acme", "renewed-secret")
    set_password(cluster_broker.password_file, "newcomer", "newcomer-secret")
    process = cluster_broker.broker.process
    assert process is not None

    # Until the reload the broker accepts only the old passwords.
    with pytest.raises(NotAuthorized):
        async with MqttSession(cluster_broker.options("newcomer", password="newcomer-secret")):
            pass
    os.kill(process.pid, signal.SIGHUP)
    await connect_when_reloaded(cluster_broker.options("newcomer", password="newcomer-secret"))

    async with MqttSession(cluster_broker.options("acme", password="renewed-secret")):
        pass
    with pytest.raises(NotAuthorized):
        async with MqttSession(cluster_broker.options("acme")):
            pass


async def test_added_member_connects_after_reload(
    cluster_broker: ClusterBroker, aggregator: MqttSession, tmp_path: Path
) -> None:
    arguments = ["add-member", "--cluster", cluster_broker.cluster, "--member", "newcomer"]
    arguments += ["--database", f"sqlite:///{tmp_path / 'kooperant.db'}"]
    arguments += ["--mosquitto-passwords", str(cluster_broker.password_file)]
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kooperant", "server", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    settings = yaml.safe_load(result.stdout)["broker"]
    process = cluster_broker.broker.process
    assert process is not None

    os.kill(process.pid, signal.SIGHUP)
    options = cluster_broker.options(settings["username"], password=settings["password"])
    await connect_when_reloaded(options)
    async with MqttSession(options) as member:
        await member.publish(cluster_broker.topic("newcomer"), b"offer")

    received = await next_message(aggregator)
    assert received.topic == cluster_broker.topic("newcomer")


async def connect_when_reloaded(options: ConnectOptions) -> None:
    """Connect with ``options``, retrying while the broker has not yet reloaded its files."""
    deadline = asyncio.get_running_loop().time() + RELOAD_TIMEOUT_SECONDS
    while True:
        try:
            async with MqttSession(options):
                return
        except NotAuthorized:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_client_certificate_alternative(tmp_path: Path, cluster_id: str) -> None:
    cluster_broker = start_cluster_broker(tmp_path, cluster_id, client_certificates=True)
    try:
        acme = cluster_broker.ca.issue_client("acme")
        topic = cluster_broker.topic("acme")
        options = cluster_broker.options("acme", password="", client_certificate=acme)

        async with MqttSession(cluster_broker.options(AGGREGATOR_USER, tls=False)) as aggregator:
            await aggregator.subscribe([f"kooperant/v1/{cluster_id}/#"])
            async with MqttSession(options) as member:
                with pytest.raises(PublishRejected):
                    await member.publish(cluster_broker.topic("other"), b"forged")
                await member.publish(topic, b"offer")
            received = await next_message(aggregator)

        assert received.topic == topic
        with pytest.raises(ConnectFailed):
            async with MqttSession(cluster_broker.options("acme")):
                pass
    finally:
        cluster_broker.broker.stop()
