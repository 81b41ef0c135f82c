"""The agent endpoint's ``/metrics`` and ``/healthz``, after real events."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.base import MachineStatus, Observation
from agent.config import load_config
from agent.health import agent_health
from agent.runner import Agent
from agent.status import AgentStatus, OutboxStatus
from kooperant import __version__
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState, offer_topic, status_topic
from tests.agent import test_agent_status as status_tests
from tests.agent.test_agent_status import SINCE, WatchedMachines, unused_broker_url, write_config
from tests.agent.test_publisher import make_broker
from tests.support.mosquitto import running

running_agent = status_tests.running_agent
watched_adapters = status_tests.watched_adapters

SHARE_CNC_1 = "share:\n  - resource: cnc-1\n    fields: [state]\n"
PASSWORD = "s3cret-broker-pass"


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def fetch_when_served(url: str) -> tuple[int, str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            return await asyncio.to_thread(fetch, url)
        except urllib.error.URLError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample of the metrics page by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def wait_for_sample(
    url: str, name: str, labels: dict[str, str], condition: Callable[[float], bool]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scrape ``url`` until the sample ``name{labels}`` meets ``condition``, within ten seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    key = (name, tuple(sorted(labels.items())))
    while True:
        _, text = await fetch_when_served(url)
        found = samples(text)
        if (key in found and condition(found[key])) or loop.time() > deadline:
            return found
        await asyncio.sleep(0.1)


@pytest.mark.mosquitto
async def test_metrics_after_publishing(
    tmp_path: Path, mosquitto_url: str, running_agent: Callable[[Path], Any]
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, mosquitto_url, f"port: {port}", policy=SHARE_CNC_1)
    await running_agent(config)
    url = f"http://127.0.0.1:{port}/metrics"

    found = await wait_for_sample(
        url, "kooperant_agent_messages_published_total", {}, lambda value: value >= 1
    )

    hall = (("adapter", "hall"),)
    source = (("adapter", "hall"), ("source", "opc.tcp://127.0.0.1:4840"))
    assert found[("kooperant_agent_messages_published_total", ())] >= 1
    assert found[("kooperant_agent_broker_connected", ())] == 1
    assert found[("kooperant_agent_messages_dropped_total", ())] == 0
    assert found[("kooperant_agent_messages_rejected_total", ())] == 0
    assert found[("kooperant_agent_outbox_messages", ())] == 0
    assert found[("kooperant_agent_outbox_oldest_age_seconds", ())] == 0
    assert found[("kooperant_agent_build_info", (("version", __version__),))] == 1
    assert found[("kooperant_agent_policy_valid", ())] == 1
    assert found[("kooperant_agent_adapter_started", hall)] == 1
    assert found[("kooperant_agent_adapter_observations", hall)] == 2
    assert found[("kooperant_agent_adapter_collect_failures_total", hall)] == 0
    assert found[("kooperant_agent_adapter_last_collect_timestamp_seconds", hall)] > 0
    assert found[("kooperant_agent_sources", (*hall, ("state", "connected")))] == 1
    assert found[("kooperant_agent_sources", (*hall, ("state", "disconnected")))] == 0
    assert found[("kooperant_agent_source_reconnects_total", source)] == 2
    errors = tuple(sorted((*source, ("error", "bad_status"))))
    assert found[("kooperant_agent_source_errors_total", errors)] == 3
    assert found[("kooperant_agent_source_last_data_timestamp_seconds", source)] == (
        SINCE.timestamp()
    )
    assert found[("kooperant_agent_capacity_requests", (("state", "open"),))] == 0
    assert found[("kooperant_agent_capacity_requests_invalid_total", ())] == 0


async def test_metrics_count_queued_and_dropped(
    tmp_path: Path, running_agent: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}", policy=SHARE_CNC_1)
    # A queued message older than 3.6 ms is dropped when the next one is queued.
    text = config.read_text(encoding="utf-8")
    limits = "outbox:\n  max_age_hours: 0.000001\npolicy:"
    config.write_text(text.replace("policy:", limits, 1), encoding="utf-8")
    await running_agent(config)
    url = f"http://127.0.0.1:{port}/metrics"
    await fetch_when_served(url)
    [adapter] = WatchedMachines.instances
    states = itertools.cycle([MachineState.NOT_EXECUTING, MachineState.EXECUTING])
    state = next(states)

    def collect() -> list[Observation]:
        return [MachineStatus("cnc-1", state, since=SINCE)]

    monkeypatch.setattr(adapter, "collect", collect)
    # Each new state is a new offer, queued while the broker cannot be reached.
    for _ in range(3):
        state = next(states)
        adapter.context.notify_changed()
        await asyncio.sleep(0.7)

    found = await wait_for_sample(
        url, "kooperant_agent_messages_dropped_total", {}, lambda value: value >= 1
    )

    assert found[("kooperant_agent_messages_dropped_total", ())] >= 1
    assert found[("kooperant_agent_broker_connected", ())] == 0
    assert found[("kooperant_agent_broker_connect_failures_total", ())] >= 1
    assert found[("kooperant_agent_outbox_messages", ())] >= 1
    assert found[("kooperant_agent_outbox_bytes", ())] > 0
    assert found[("kooperant_agent_outbox_oldest_age_seconds", ())] >= 0
    assert found[("kooperant_agent_messages_published_total", ())] == 0


async def test_healthz_ok_while_broker_down(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    await running_agent(config)

    code, body = await fetch_when_served(f"http://127.0.0.1:{port}/healthz")

    document = json.loads(body)
    assert code == 200
    assert document["status"] == "ok"
    assert document["checks"] == {"loop": "ok", "policy": "ok", "outbox": "ok"}
    assert document["broker"] == "disconnected"
    assert document["sources"] == {"connected": 1}


async def test_healthz_fails_on_invalid_policy(tmp_path: Path) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    running = Agent(load_config(config), poll_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        await fetch_when_served(url)
        (tmp_path / "policy.yaml").write_text("share: [unclosed\n", encoding="utf-8")
        for _ in range(100):
            if running.policy_error is not None:
                break
            await asyncio.sleep(0.05)

        code, body = await asyncio.to_thread(fetch, url)
        _, metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
    finally:
        stop.set()
        await task

    document = json.loads(body)
    assert code == 503
    assert document["status"] == "failing"
    assert document["checks"]["policy"].startswith("invalid: ")
    assert "policy.yaml" in document["checks"]["policy"]
    assert samples(metrics)[("kooperant_agent_policy_valid", ())] == 0


async def test_no_password_in_endpoints(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}", policy=SHARE_CNC_1)
    text = config.read_text(encoding="utf-8")
    credentials = f"  username: acme\n  password: {PASSWORD}\npolicy:"
    config.write_text(text.replace("policy:", credentials, 1), encoding="utf-8")
    await running_agent(config)
    base = f"http://127.0.0.1:{port}"
    await fetch_when_served(f"{base}/status")
    # The failed connect attempts, and their errors, must be in the documents first.
    await asyncio.sleep(0.5)

    bodies = [await asyncio.to_thread(fetch, f"{base}/{path}") for path in ("status", "healthz")]
    bodies.append(await asyncio.to_thread(fetch, f"{base}/metrics"))

    for code, body in bodies:
        assert code == 200
        assert PASSWORD not in body
        assert "acme:" not in body


def status_at(now: datetime, **changes: Any) -> AgentStatus:
    status = AgentStatus(
        member="acme",
        cluster="c",
        now=now,
        started_at=now - timedelta(hours=1),
        broker_url="mqtt://127.0.0.1:1883",
        broker_connected=True,
        published_messages=0,
        broker_failed_attempts=0,
        policy_error=None,
        adapters=(),
        outbox=OutboxStatus(0, 0, None, 0, 0),
        last_cycle_at=now - timedelta(seconds=60),
        publish_interval_seconds=60.0,
    )
    return dataclasses.replace(status, **changes)


def test_health_loop_stalled_after_limit() -> None:
    now = datetime(2026, 3, 2, 6, tzinfo=UTC)

    # The limit is twice the 60 s interval plus 60 s.
    recent = agent_health(status_at(now, last_cycle_at=now - timedelta(seconds=180)))
    stalled = agent_health(status_at(now, last_cycle_at=now - timedelta(seconds=181)))

    assert recent.healthy
    assert not stalled.healthy
    assert stalled.document["checks"]["loop"] == (
        "stalled: no cycle finished for 181 s, the limit is 180 s"
    )


def test_health_before_first_cycle_counts_from_start() -> None:
    now = datetime(2026, 3, 2, 6, tzinfo=UTC)

    starting = status_at(now, last_cycle_at=None, started_at=now - timedelta(seconds=10))
    hung = status_at(now, last_cycle_at=None, started_at=now - timedelta(seconds=200))

    assert agent_health(starting).healthy
    assert not agent_health(hung).healthy


def test_health_unreadable_outbox_fails() -> None:
    now = datetime(2026, 3, 2, 6, tzinfo=UTC)

    health = agent_health(status_at(now, outbox=OutboxStatus(None, None, None, 0, 0)))

    assert not health.healthy
    assert health.document["checks"]["outbox"].startswith("unreadable")


def test_health_broker_down_stays_healthy() -> None:
    now = datetime(2026, 3, 2, 6, tzinfo=UTC)

    health = agent_health(status_at(now, broker_connected=False))

    assert health.healthy
    assert health.document["broker"] == "disconnected"


@pytest.mark.parametrize(
    ("language", "version", "collects", "waiting"),
    [
        (
            "en",
            "Agent version: ",
            "  hall: observations 2, failed collections 0, last collected 20",
            "  payload bytes waiting: ",
        ),
        (
            "pl",
            "Wersja agenta: ",
            "  hall: obserwacje 2, nieudane odczyty 0, ostatni odczyt 20",
            "  bajty treści w kolejce: ",
        ),
    ],
)
async def test_status_table_shows_metrics(
    tmp_path: Path,
    running_agent: Callable[[Path], Any],
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    version: str,
    collects: str,
    waiting: str,
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    config = write_config(
        tmp_path, unused_broker_url(), f"port: {free_tcp_port()}", policy=SHARE_CNC_1
    )
    await running_agent(config)
    await status_tests.invoke_until_served("status", "--config", str(config))
    # The first cycle queues the offer of cnc-1 once the adapters started.
    await asyncio.sleep(0.5)

    result = await status_tests.invoke("status", "--config", str(config))

    lines = result.stdout.splitlines()
    assert f"{version}{__version__}" in lines
    assert any(line.startswith(collects) for line in lines), result.stdout
    [queued] = [line for line in lines if line.startswith(waiting)]
    assert int(queued.removeprefix(waiting)) > 0
    [cycle] = [line for line in lines if line.startswith(("Last cycle", "Ostatni cykl"))]
    assert cycle.split(": ", 1)[1] != "-"


async def test_metrics_count_broker_rejections(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    allowed = offer_topic("status-test", "acme", "cnc-1")
    acl = tmp_path / "acl"
    acl.write_text(
        f"topic write {allowed}\n"
        f"topic write {status_topic('status-test', 'acme')}\n"
        "topic read kooperant/v1/status-test/acme/requests/#\n",
        encoding="utf-8",
    )
    broker = make_broker(tmp_path / "broker", acl_file=acl)
    port = free_tcp_port()
    share_both = SHARE_CNC_1 + "  - resource: cnc-2\n    fields: [state]\n"
    config = write_config(tmp_path, broker.url, f"port: {port}", policy=share_both)

    with running(broker):
        await running_agent(config)
        found = await wait_for_sample(
            f"http://127.0.0.1:{port}/metrics",
            "kooperant_agent_messages_rejected_total",
            {},
            lambda value: value >= 1,
        )

    # The broker denies the offer of cnc-2 by its ACL, with the MQTT 5 reason code 135.
    assert found[("kooperant_agent_messages_rejected_total", ())] == 1
    assert found[("kooperant_agent_messages_published_total", ())] >= 1
    assert found[("kooperant_agent_outbox_messages", ())] == 0
