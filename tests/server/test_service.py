"""The run loop and the ``kooperant server`` commands, with real sockets and processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import httpx
import pytest

from kooperant.backoff import BackoffPolicy
from kooperant.net import free_tcp_port
from kooperant.protocol import offer_topic
from server.errors import InvalidSettingError
from server.service import ServerSettings, run_server
from tests.server.helpers import HEAD_REVISION, machine_offer

START_SECONDS = 10.0


@asynccontextmanager
async def running_server(
    settings: ServerSettings, client_host: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the server and yield a client of it, on ``client_host`` if given, else its host."""
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(run_server(settings, stop, ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=START_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()
    assert ready.is_set(), "server did not become ready"

    base_url = f"http://{client_host or settings.http_host}:{settings.http_port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            yield client
    finally:
        stop.set()
        started = time.monotonic()
        async with asyncio.timeout(8):
            await task
        assert time.monotonic() - started < 6, "server took too long to stop"


async def wait_for_status(client: httpx.AsyncClient, path: str, expected: int) -> httpx.Response:
    async with asyncio.timeout(5):
        while True:
            response = await client.get(path)
            if response.status_code == expected:
                return response
            await asyncio.sleep(0.05)


async def wait_for_resources(client: httpx.AsyncClient) -> list[dict[str, object]]:
    async with asyncio.timeout(5):
        while True:
            items: list[dict[str, object]] = (await client.get("/api/v1/resources")).json()["items"]
            if items:
                return items
            await asyncio.sleep(0.05)


async def test_run_server_with_embedded_broker(tmp_path: Path, free_port: int) -> None:
    settings = ServerSettings(
        database=f"sqlite:///{tmp_path / 'k.db'}",
        http_port=free_port,
        embedded_broker_port=free_tcp_port(),
    )

    async with running_server(settings) as client:
        health = await wait_for_status(client, "/healthz", 200)
        async with aiomqtt.Client("127.0.0.1", settings.embedded_broker_port) as publisher:
            offer = machine_offer(cluster="embedded")
            topic = offer_topic("embedded", "acme", "cnc-5ax-01")
            await publisher.publish(topic, offer.to_payload(), qos=1, retain=True)

            await wait_for_resources(client)
        dashboard = await client.get("/")

    assert health.json() == {"status": "ok", "database": "ok", "broker": "connected"}
    assert "cnc-5ax-01" in dashboard.text


@pytest.mark.mosquitto
async def test_run_server_with_given_broker(
    tmp_path: Path, free_port: int, mosquitto_url: str, cluster_id: str
) -> None:
    settings = ServerSettings(
        database=f"sqlite:///{tmp_path / 'k.db'}",
        broker_url=mosquitto_url,
        cluster=cluster_id,
        http_port=free_port,
    )
    topic = offer_topic(cluster_id, "acme", "cnc-5ax-01")
    other_cluster_topic = offer_topic(f"{cluster_id}-other", "acme", "cnc-5ax-01")

    async with running_server(settings) as client, aiomqtt.Client("127.0.0.1", 1883) as mqtt:
        await wait_for_status(client, "/healthz", 200)
        other = machine_offer(cluster=f"{cluster_id}-other")
        await mqtt.publish(other_cluster_topic, other.to_payload(), qos=1, retain=True)
        await mqtt.publish(
            topic, machine_offer(cluster=cluster_id).to_payload(), qos=1, retain=True
        )
        try:
            await wait_for_resources(client)
            await asyncio.sleep(0.2)  # time for a wrongly accepted other-cluster offer to land
            items = (await client.get("/api/v1/resources")).json()["items"]
        finally:
            await mqtt.publish(topic, b"", qos=1, retain=True)
            await mqtt.publish(other_cluster_topic, b"", qos=1, retain=True)

    assert [item["cluster"] for item in items] == [cluster_id]


async def test_run_server_http_port_taken(tmp_path: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'k.db'}",
            broker_url=f"mqtt://127.0.0.1:{free_tcp_port()}",
            http_port=port,
            reconnect=BackoffPolicy(minimum=0.05, maximum=30.0),
        )

        with pytest.raises(InvalidSettingError, match=f"127.0.0.1:{port}"):
            await run_server(settings, asyncio.Event())


async def test_run_server_invalid_host_names_host(tmp_path: Path, free_port: int) -> None:
    # glibc rejects 999.1.1.1 without a DNS query (checked with strace), so no traffic leaves.
    settings = ServerSettings(
        database=f"sqlite:///{tmp_path / 'k.db'}",
        broker_url=f"mqtt://127.0.0.1:{free_tcp_port()}",
        http_host="999.1.1.1",
        http_port=free_port,
    )

    with pytest.raises(InvalidSettingError) as raised:
        await run_server(settings, asyncio.Event())

    message = str(raised.value)
    assert f"999.1.1.1:{free_port}" in message
    assert "--host" in message
    assert "--port" not in message


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"broker_url": "tcp://127.0.0.1:1883"}, "tcp://127.0.0.1:1883"),
        ({"broker_url": "mqtt://user:secret@127.0.0.1"}, "mqtt://user:***@127.0.0.1"),
        ({"database": "oracle://scott:tiger@127.0.0.1/db"}, "oracle://scott:***@127.0.0.1/db"),
        ({"cluster": "bad/cluster"}, "'bad/cluster'"),
    ],
)
def test_settings_reject_bad_values(changes: dict[str, str], shown: str) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(**changes)  # type: ignore[arg-type]

    assert shown in str(raised.value)
    assert "secret" not in str(raised.value)
    assert "tiger" not in str(raised.value)


def test_settings_repr_hides_password() -> None:
    settings = ServerSettings(
        broker_url="mqtt://127.0.0.1:1883", broker_username="aggregator", broker_password="hunter2"
    )

    assert "hunter2" not in repr(settings)


def run_cli(*arguments: str, language: str = "en") -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "KOOPERANT_LANG": language}
    return subprocess.run(
        [sys.executable, "-m", "kooperant", "server", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )


def test_cli_migrate_creates_schema(tmp_path: Path) -> None:
    result = run_cli("migrate", "--database", f"sqlite:///{tmp_path / 'k.db'}")

    assert result.returncode == 0, result.stderr
    assert f"revision {HEAD_REVISION}" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ("migrate", "--database", "mysql://kooperant:secret@127.0.0.1/db"),
            "Nieobsługiwany rodzaj bazy danych w adresie mysql://kooperant:***@127.0.0.1/db",
        ),
        (
            ("run", "--broker", "http://127.0.0.1:1883"),
            "Nieprawidłowy adres brokera MQTT http://127.0.0.1:1883",
        ),
    ],
)
def test_cli_bad_url_exits_2_in_polish(
    tmp_path: Path, arguments: tuple[str, ...], expected: str
) -> None:
    full = list(arguments)
    if "--database" not in full:
        full += ["--database", f"sqlite:///{tmp_path / 'k.db'}"]

    completed = run_cli(*full, language="pl")

    assert completed.returncode == 2, completed.stderr
    assert expected in completed.stderr
    assert "secret" not in completed.stderr


def test_cli_unreachable_postgres_exits_2(free_port: int) -> None:
    url = f"postgresql://kooperant:secret@127.0.0.1:{free_port}/kooperant"

    completed = run_cli("migrate", "--database", url)

    assert completed.returncode == 2
    assert f"postgresql://kooperant:***@127.0.0.1:{free_port}/kooperant" in completed.stderr
    assert "secret" not in completed.stderr


def test_cli_port_taken_advises_port(tmp_path: Path) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]

        completed = run_cli(
            "run",
            "--database",
            f"sqlite:///{tmp_path / 'k.db'}",
            "--broker",
            f"mqtt://127.0.0.1:{free_tcp_port()}",
            "--port",
            str(port),
        )

    assert completed.returncode == 2, completed.stderr
    assert f"127.0.0.1:{port}: port in use" in completed.stderr
    assert "--port" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_cli_run_stops_on_sigint(tmp_path: Path, free_port: int) -> None:
    broker_port = free_tcp_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kooperant",
            "server",
            "run",
            "--database",
            f"sqlite:///{tmp_path / 'k.db'}",
            "--port",
            str(free_port),
            "--embedded-broker-port",
            str(broker_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KOOPERANT_LANG": "en"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        second_line = process.stdout.readline()
        health = httpx.get(f"http://127.0.0.1:{free_port}/healthz", timeout=2)
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert first_line.strip() == f"Dashboard: http://127.0.0.1:{free_port}/"
    assert second_line.strip() == f"MQTT broker: mqtt://127.0.0.1:{broker_port}"
    assert health.status_code in (200, 503)
    assert process.returncode == 0, errors
    assert "Server stopped." in output
    assert "Traceback" not in errors


def test_settings_reject_zero_sweep_interval() -> None:
    with pytest.raises(ValueError, match="expiry_sweep_seconds must be above 0, got 0"):
        ServerSettings(expiry_sweep_seconds=0)
