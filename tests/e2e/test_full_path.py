"""Machine → policy → MQTT → aggregator → API, on real components.

One test runs the production setup: Mosquitto and PostgreSQL on loopback and an OPC UA server
built from the official DI and Machinery nodesets. The other runs the embedded defaults: the
in-process broker and SQLite. Both check the free hours expected from a schedule CSV fixture, the
machine states, and that a machine no policy rule names never reaches the aggregator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from agent.config import load_config
from agent.runner import Agent
from server.broker import EmbeddedBroker
from server.service import ServerSettings, run_server
from tests.support.machinery_server import MachineSpec, machinery_server

# Monday 2026-12-07 08:00 in Warsaw (UTC+1). With one shift 06:00-14:00 on weekdays and a
# two-day horizon, the working time is Mon 08-14, Tue 06-14 and Wed 06-08: 16 hours.
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
WORKING_HOURS = 16.0

SCHEDULE_CSV = (
    "Zlecenie;Maszyna;Początek;Koniec;Ilość\r\n"
    "ZP/2026/0001 wałek;FREZ-A1;07.12.2026 10:00;07.12.2026 12:00;12,5\r\n"
    "ZP/2026/0002 tuleja;FREZ-A1;08.12.2026 13:00;08.12.2026 15:00;3\r\n"
    "ZP/2026/0003 łożysko;TOKARKA-B2;08.12.2026 06:00;08.12.2026 08:00;40\r\n"
)
# Mill: 16 h minus 2 h (Mon 10-12) minus 1 h (Tue 13-14; 14-15 is outside the shift).
MILL_FREE_HOURS = 13.0
# Lathe: OutOfService now, which counts until the end of the current shift (Mon 08-14, 6 h),
# minus the order on Tue 06-08 (2 h).
LATHE_FREE_HOURS = 8.0

MACHINES = (
    MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing"),
    MachineSpec("Lathe B2", "Mazak", "QTU 250", "MZ-2502", "OutOfService"),
    MachineSpec("Secret-Prototype", "Own build", "X1", "P-0001", "Executing"),
)

AGENT_YAML = """\
member: acme-metal
cluster: ${CLUSTER}
timezone: Europe/Warsaw
horizon_days: 2
publish_interval_seconds: 60
broker:
  url: ${BROKER_URL}
  # The embedded amqtt broker speaks MQTT 3.1.1 only; Mosquitto speaks both.
  protocol: "3.1.1"
calendar:
  shifts:
    - {days: [mon, tue, wed, thu, fri], start: "06:00", end: "14:00"}
policy: policy.yaml
resources:
  mill-a1: {name: Hermle C 42 U, kind: machine, capabilities: [5-axis-milling]}
  lathe-b2: {name: Mazak QTU 250, kind: machine, capabilities: [cnc-turning]}
adapters:
  - type: opcua
    name: hala-a
    url: ${OPCUA_URL}
    publishing_interval_ms: 100
    sampling_interval_ms: 100
  - type: schedule_csv
    name: plan
    path: plan.csv
    stable_seconds: 0
    poll_interval_seconds: 0.5
    machines: {FREZ-A1: mill-a1, TOKARKA-B2: lathe-b2}
"""

POLICY_YAML = """\
share:
  - resource: mill-a1
    fields: [name, capabilities, state, free_hours, free_intervals, horizon]
  - resource: lathe-b2
    fields: [state, free_hours, free_intervals]
"""


def write_agent_files(folder: Path) -> Path:
    (folder / "plan.csv").write_bytes(SCHEDULE_CSV.encode("cp1250"))
    (folder / "policy.yaml").write_text(POLICY_YAML)
    config_path = folder / "agent.yaml"
    config_path.write_text(AGENT_YAML)
    return config_path


@contextlib.asynccontextmanager
async def running(settings: ServerSettings, agent: Agent | None = None) -> AsyncIterator[None]:
    """Run the aggregator, and then the agent, until the block ends."""
    stop = asyncio.Event()
    ready = asyncio.Event()
    tasks = [asyncio.create_task(run_server(settings, stop, ready))]
    async with asyncio.timeout(20):
        await ready.wait()
    if agent is not None:
        tasks.append(asyncio.create_task(agent.run(stop)))
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await asyncio.gather(*tasks)


async def wait_for_resources(port: int, expected: set[str]) -> dict[str, dict[str, Any]]:
    """Poll the API until it lists the ``expected`` resources; return all items by resource."""
    items: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            response = await client.get("/api/v1/resources", params={"kind": "machine"})
            items = {item["resource"]: item for item in response.json()["items"]}
            if expected <= set(items):
                return items
            await asyncio.sleep(0.3)
    raise AssertionError(f"API listed {sorted(items)} within 20 s, expected {sorted(expected)}")


def check_machine_offers(items: dict[str, dict[str, Any]]) -> None:
    mill = items["mill-a1"]
    lathe = items["lathe-b2"]

    assert mill["member"] == "acme-metal"
    assert mill["state"] == "Executing"
    assert mill["free_hours"] == pytest.approx(MILL_FREE_HOURS)
    assert mill["capabilities"] == ["5-axis-milling"]
    assert mill["free_intervals"][0] == {
        "start": "2026-12-07T07:00:00+00:00",
        "end": "2026-12-07T09:00:00+00:00",
    }
    assert lathe["state"] == "OutOfService"
    assert lathe["free_hours"] == pytest.approx(LATHE_FREE_HOURS)
    assert lathe["name"] is None
    assert lathe["free_intervals"][0]["start"] == "2026-12-08T07:00:00+00:00"
    assert "secret-prototype" not in items


@pytest.mark.nodesets
async def test_full_path_on_mosquitto_and_postgres(
    nodesets_dir: Path,
    mosquitto_url: str,
    postgres_url: str,
    cluster_id: str,
    free_port: int,
    tmp_path: Path,
) -> None:
    async with machinery_server(nodesets_dir, MACHINES) as opcua:
        config = load_config(
            write_agent_files(tmp_path),
            variables={
                "CLUSTER": cluster_id,
                "BROKER_URL": mosquitto_url,
                "OPCUA_URL": opcua.endpoint,
            },
        )
        settings = ServerSettings(
            database=postgres_url, broker_url=mosquitto_url, cluster=cluster_id, http_port=free_port
        )
        agent = Agent(config, clock=lambda: NOW)

        async with running(settings, agent):
            items = await wait_for_resources(free_port, {"mill-a1", "lathe-b2"})
            check_machine_offers(items)

            await opcua.set_state("Lathe B2", "NotExecuting")
            lathe = await wait_for_state(free_port, "lathe-b2", "NotExecuting")

        await clear_retained(mosquitto_url, cluster_id)

    assert lathe["free_hours"] == pytest.approx(WORKING_HOURS - 2.0)


async def wait_for_state(port: int, resource: str, state: str) -> dict[str, Any]:
    """Poll the API until ``resource`` reports ``state``; return its item."""
    item: dict[str, Any] = {}
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            response = await client.get("/api/v1/resources", params={"kind": "machine"})
            found = [entry for entry in response.json()["items"] if entry["resource"] == resource]
            item = found[0] if found else {}
            if item.get("state") == state:
                return item
            await asyncio.sleep(0.3)
    raise AssertionError(f"{resource} did not reach {state} within 15 s; last item: {item}")


async def clear_retained(broker_url: str, cluster: str) -> None:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as client:
        for resource in ("mill-a1", "lathe-b2"):
            topic = f"kooperant/v1/{cluster}/acme-metal/offers/{resource}"
            await client.publish(topic, b"", qos=1, retain=True)


@pytest.mark.nodesets
async def test_full_path_on_embedded_broker_and_sqlite(
    nodesets_dir: Path, cluster_id: str, free_port: int, tmp_path: Path
) -> None:
    async with (
        machinery_server(nodesets_dir, MACHINES) as opcua,
        EmbeddedBroker(port=0) as broker,
    ):
        config = load_config(
            write_agent_files(tmp_path),
            variables={
                "CLUSTER": cluster_id,
                "BROKER_URL": broker.url,
                "OPCUA_URL": opcua.endpoint,
            },
        )
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'kooperant.db'}",
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            http_port=free_port,
        )

        async with running(settings, Agent(config, clock=lambda: NOW)):
            items = await wait_for_resources(free_port, {"mill-a1", "lathe-b2"})

    check_machine_offers(items)


async def test_agent_publishes_other_offers_while_opcua_unreachable(
    cluster_id: str, free_port: int, tmp_path: Path
) -> None:
    # Nothing listens on free_port, so the OPC UA adapter cannot connect. The schedule alone
    # still yields machine offers, because the config declares the machines.
    async with EmbeddedBroker(port=0) as broker:
        config = load_config(
            write_agent_files(tmp_path),
            variables={
                "CLUSTER": cluster_id,
                "BROKER_URL": broker.url,
                "OPCUA_URL": f"opc.tcp://127.0.0.1:{free_port}",
            },
        )
        http_port = free_port + 1 if free_port < 65535 else free_port - 1
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'kooperant.db'}",
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            http_port=http_port,
        )

        async with running(settings, Agent(config, clock=lambda: NOW)):
            items = await wait_for_resources(http_port, {"mill-a1", "lathe-b2"})

    assert items["mill-a1"]["free_hours"] == pytest.approx(MILL_FREE_HOURS)
    assert items["lathe-b2"]["free_hours"] == pytest.approx(WORKING_HOURS - 2.0)
    assert items["mill-a1"]["state"] in (None, "Unknown")


async def test_server_keeps_serving_after_bad_messages(
    cluster_id: str, free_port: int, tmp_path: Path
) -> None:
    async with EmbeddedBroker(port=0) as broker:
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'kooperant.db'}",
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            http_port=free_port,
        )
        async with running(settings):
            host, port = broker.url.removeprefix("mqtt://").split(":")
            topic = f"kooperant/v1/{cluster_id}/acme/offers/cnc-1"
            good = {
                "schema": "kooperant.offer/1",
                "cluster": cluster_id,
                "member": "acme",
                "resource": "cnc-1",
                "kind": "machine",
                "generated_at": "2026-12-07T08:00:00+01:00",
                "free_hours": 4,
            }
            async with aiomqtt.Client(host, int(port)) as client:
                await client.publish(topic, b"\x00not json", qos=1)
                await client.publish(topic, json.dumps({**good, "schema": "x/9"}).encode(), qos=1)
                await client.publish(topic, json.dumps(good).encode(), qos=1)

            items = await wait_for_resources(free_port, {"cnc-1"})
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port}") as client:
                rejected = (await client.get("/api/v1/rejected-messages")).json()["items"]

    assert items["cnc-1"]["free_hours"] == 4
    reasons = [entry["reason"] for entry in rejected]
    assert any("not JSON" in reason or "not UTF-8" in reason for reason in reasons), reasons
    assert any("unsupported schema 'x/9'" in reason for reason in reasons), reasons
