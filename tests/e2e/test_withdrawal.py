"""Withdrawal end to end: agent → broker → aggregator → API, on real components.

The owner withdraws a resource with ``kooperant agent withdraw`` (run as a separate process, as an
operator would) and removes another one's rule from the running agent's policy. Both offers must
disappear from ``GET /api/v1/resources`` within 5 seconds, the withdrawn one with its history
deleted on request, and neither may come back while the agent keeps republishing.
``kooperant agent restore`` brings the withdrawn one back.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import aiomqtt
import httpx
import pytest

from agent.config import load_config
from agent.runner import Agent
from server.broker import EmbeddedBroker
from server.service import ServerSettings
from server.storage import Storage
from tests.e2e.test_full_path import running

WITHDRAWAL_BOUND_SECONDS = 5.0
MEMBER = "acme-metal"

AGENT_YAML = """\
member: acme-metal
cluster: ${CLUSTER}
publish_interval_seconds: 1
broker:
  url: ${BROKER_URL}
  # The embedded amqtt broker speaks MQTT 3.1.1 only; Mosquitto speaks both.
  protocol: "3.1.1"
  client_id: ${CLUSTER}-agent
policy: policy.yaml
audit_log: audit.db
resources:
  zespol-it: {name: Zespół IT, kind: it_team, capabilities: [python, sql]}
adapters:
  - type: host
    name: serwerownia
    resource: server-01
    sample_interval_seconds: 0.5
"""

HOST_RULE = """\
  - resource: server-01
    publish_as: serwer-1
    fields: [amounts]
"""
TEAM_RULE = """\
  - resource: zespol-it
    fields: [name, capabilities]
"""


def write_policy(folder: Path, *rules: str) -> None:
    staging = folder / "policy.yaml.new"
    staging.write_text("share:\n" + "".join(rules), encoding="utf-8")
    staging.replace(folder / "policy.yaml")


async def listed_resources(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/api/v1/resources")
    assert response.status_code == 200, response.text
    return {item["resource"] for item in response.json()["items"]}


async def seconds_until(
    client: httpx.AsyncClient, present: bool, resource: str, max_seconds: float = 20.0
) -> float:
    """Return the seconds until ``resource`` is listed (``present``) or no longer listed."""
    started = time.monotonic()
    while time.monotonic() - started < max_seconds:
        if (resource in await listed_resources(client)) == present:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    state = "listed" if present else "gone"
    raise AssertionError(f"{resource} was not {state} within {max_seconds} s")


async def kooperant(*arguments: str) -> tuple[int, str]:
    """Run the ``kooperant`` command in a new process; return its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kooperant",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "KOOPERANT_LANG": "en"},
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def clear_topics(broker_url: str, cluster: str) -> None:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as client:
        for channel in ("offers", "withdrawals"):
            for resource in ("serwer-1", "zespol-it"):
                topic = f"kooperant/v1/{cluster}/{MEMBER}/{channel}/{resource}"
                await client.publish(topic, b"", qos=1, retain=True)


async def withdraw_and_remove_rule(
    folder: Path, settings: ServerSettings, cluster: str
) -> dict[str, float]:
    """Run the scenario; return the measured seconds of each step."""
    write_policy(folder, HOST_RULE, TEAM_RULE)
    config_path = folder / "agent.yaml"
    config_path.write_text(AGENT_YAML, encoding="utf-8")
    # The agent and the withdraw command read ${CLUSTER} and ${BROKER_URL} from the environment.
    config = load_config(config_path)
    figures: dict[str, float] = {}
    storage = Storage(settings.database)

    async with (
        running(settings, Agent(config)),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as client,
    ):
        await seconds_until(client, True, "serwer-1")
        await seconds_until(client, True, "zespol-it")
        assert storage.count_history(cluster, MEMBER, "serwer-1") > 0

        status, output = await kooperant(
            "agent", "withdraw", "server-01", "--delete-history", "--config", str(config_path)
        )
        assert status == 0, output
        # Counted from the command's exit, when the withdrawal is recorded: the start-up of a
        # Python process, which varies with machine load, is not the agent's or server's delay.
        started = time.monotonic()
        await seconds_until(client, False, "serwer-1")
        figures["withdraw command"] = time.monotonic() - started

        started = time.monotonic()
        write_policy(folder, HOST_RULE)
        await seconds_until(client, False, "zespol-it")
        figures["rule removal"] = time.monotonic() - started

        # With a 1 s publish interval, three full cycles would have brought either one back.
        await asyncio.sleep(3)
        assert await listed_resources(client) == set()
        assert storage.count_history(cluster, MEMBER, "serwer-1") == 0
        assert storage.count_history(cluster, MEMBER, "zespol-it") > 0

        status, output = await kooperant(
            "agent", "restore", "server-01", "--config", str(config_path)
        )
        assert status == 0, output
        figures["restore"] = await seconds_until(client, True, "serwer-1")

    storage.close()
    # Shown with ``pytest -s``; the closing checks below hold the acceptance bound.
    print(", ".join(f"{step}: {seconds:.2f} s" for step, seconds in figures.items()))
    return figures


@pytest.mark.mosquitto
@pytest.mark.postgres
async def test_withdrawal_on_mosquitto_and_postgres(
    mosquitto_url: str,
    postgres_url: str,
    cluster_id: str,
    free_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLUSTER", cluster_id)
    monkeypatch.setenv("BROKER_URL", mosquitto_url)
    settings = ServerSettings(
        database=postgres_url, broker_url=mosquitto_url, cluster=cluster_id, http_port=free_port
    )
    try:
        figures = await withdraw_and_remove_rule(tmp_path, settings, cluster_id)
    finally:
        await clear_topics(mosquitto_url, cluster_id)

    assert figures["withdraw command"] < WITHDRAWAL_BOUND_SECONDS
    assert figures["rule removal"] < WITHDRAWAL_BOUND_SECONDS


async def test_withdrawal_on_embedded_broker_and_sqlite(
    cluster_id: str, free_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLUSTER", cluster_id)
    async with EmbeddedBroker(port=0) as broker:
        monkeypatch.setenv("BROKER_URL", broker.url)
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'kooperant.db'}",
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            cluster=cluster_id,
            http_port=free_port,
        )
        figures = await withdraw_and_remove_rule(tmp_path, settings, cluster_id)

    assert figures["withdraw command"] < WITHDRAWAL_BOUND_SECONDS
    assert figures["rule removal"] < WITHDRAWAL_BOUND_SECONDS
