"""ERP exports → agent → MQTT → aggregator → API, on real components.

An agent reads a JPK_MAG file with its opening stock list, an EDI++ file of Subiekt and a
Windows-1250 production plan, and the aggregator lists the supplies and machine offers they imply.
The expected figures are worked out by hand in the fixture READMEs (tests/fixtures/jpk_mag and the
comment above ``EXPECTED_ALL`` in tests/adapters/test_edi_epp.py). A truncated JPK_MAG file must
not stop the other two sources.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from agent.config import load_config
from agent.runner import Agent
from server.broker import EmbeddedBroker
from server.service import ServerSettings
from tests.e2e.test_full_path import MILL_FREE_HOURS, NOW, SCHEDULE_CSV, WORKING_HOURS, running

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MEMBER = "acme-metal"

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
status:
  enabled: false
calendar:
  shifts:
    - {days: [mon, tue, wed, thu, fri], start: "06:00", end: "14:00"}
policy: policy.yaml
resources:
  mill-a1: {name: Hermle C 42 U, kind: machine}
  lathe-b2: {name: Mazak QTU 250, kind: machine}
adapters:
  - type: jpk_mag
    name: magazyn-jpk
    path: eksport/jpk
    pattern: "*.xml"
    stable_seconds: 0
    poll_interval_seconds: 0.5
    opening_stock:
      path: eksport/stan_poczatkowy.csv
  - type: edi_epp
    name: sklep-subiekt
    path: eksport/subiekt
    stable_seconds: 0
    poll_interval_seconds: 0.5
    # The shop sells some of the items the main warehouse has; its own ids keep them apart.
    items:
      BL-DC01-1.5: sklep-bl-dc01-1.5
      LOZ-6204-2RS: sklep-loz-6204-2rs
  - type: schedule
    name: plan
    path: eksport/plan.csv
    stable_seconds: 0
    poll_interval_seconds: 0.5
    machines: {FREZ-A1: mill-a1, TOKARKA-B2: lathe-b2}
"""

POLICY_YAML = """\
share:
  - kind: supplies
    fields: [name, amounts]
  - kind: machine
    fields: [name, free_hours]
"""

# Stock at the end of March 2026 (tests/fixtures/jpk_mag/README.md).
JPK_STOCK = {
    "bl-dc01-1.5": (63.0, "ark"),
    "sr-m8x30-zn": (2650.0, "szt"),
    "loz-6204-2rs": (108.0, "szt"),
    "zyw-ep-5": (55.0, "kg"),
    "klej-pu-310": (24.0, "szt"),
}
# dokumenty.epp: (stock, incoming, expected stock, unit) per item.
EDI_AMOUNTS = {
    "sklep-bl-dc01-1.5": (90.0, 80.0, 120.0, "ark"),
    "sklep-loz-6204-2rs": (160.0, 0.0, 140.0, "szt"),
    "sr-m8x30-oc": (3800.0, 0.0, 3800.0, "szt"),
    "zyw-epox": (25.0, 40.0, 65.0, "kg"),
}
MACHINES = {"mill-a1": MILL_FREE_HOURS, "lathe-b2": WORKING_HOURS - 2.0}


def write_agent_files(folder: Path) -> Path:
    exports = folder / "eksport"
    (exports / "jpk").mkdir(parents=True)
    (exports / "subiekt").mkdir()
    shutil.copy(FIXTURES / "jpk_mag" / "magazyn_2026_03.xml", exports / "jpk")
    shutil.copy(
        FIXTURES / "jpk_mag" / "stan_poczatkowy_cp1250.csv", exports / "stan_poczatkowy.csv"
    )
    shutil.copy(FIXTURES / "edi_epp" / "dokumenty.epp", exports / "subiekt")
    (exports / "plan.csv").write_bytes(SCHEDULE_CSV.encode("cp1250"))
    (folder / "policy.yaml").write_text(POLICY_YAML, encoding="utf-8")
    config_path = folder / "agent.yaml"
    config_path.write_text(AGENT_YAML, encoding="utf-8")
    return config_path


async def wait_for_resources(port: int, expected: set[str]) -> dict[str, dict[str, Any]]:
    """Poll the API until it lists the ``expected`` resources; return all items by resource."""
    items: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        while time.monotonic() < deadline:
            response = await client.get("/api/v1/resources")
            items = {item["resource"]: item for item in response.json()["items"]}
            if expected <= set(items):
                return items
            await asyncio.sleep(0.3)
    raise AssertionError(f"API listed {sorted(items)} within 20 s, expected {sorted(expected)}")


def amounts_by_quantity(item: dict[str, Any]) -> dict[str, tuple[float, str]]:
    return {amount["quantity"]: (amount["value"], amount["unit"]) for amount in item["amounts"]}


def check_jpk_supplies(items: dict[str, dict[str, Any]]) -> None:
    for resource, (stock, unit) in JPK_STOCK.items():
        item = items[resource]
        assert item["kind"] == "supplies"
        assert amounts_by_quantity(item)["stock"] == (stock, unit), resource
    assert items["zyw-ep-5"]["name"] == "Żywica epoksydowa"


def check_edi_supplies(items: dict[str, dict[str, Any]]) -> None:
    for resource, (stock, incoming, expected, unit) in EDI_AMOUNTS.items():
        amounts = amounts_by_quantity(items[resource])
        assert amounts["stock"] == (stock, unit), resource
        assert amounts["incoming"] == (incoming, unit), resource
        assert amounts["expected_stock"] == (expected, unit), resource
    assert items["sr-m8x30-oc"]["name"] == "Śruba M8×30 ocynk"


def check_machines(items: dict[str, dict[str, Any]]) -> None:
    for resource, free_hours in MACHINES.items():
        assert items[resource]["kind"] == "machine"
        assert items[resource]["free_hours"] == pytest.approx(free_hours), resource


def check_commercial_data_withheld(items: dict[str, dict[str, Any]]) -> None:
    # The policy lists neither price nor suppliers, which both adapters read.
    for item in items.values():
        assert item.get("price") is None
        assert not item.get("suppliers")


async def test_exports_on_embedded_broker_and_sqlite(
    cluster_id: str, free_port: int, tmp_path: Path
) -> None:
    async with EmbeddedBroker(port=0) as broker:
        config = load_config(
            write_agent_files(tmp_path),
            variables={"CLUSTER": cluster_id, "BROKER_URL": broker.url},
        )
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'kooperant.db'}",
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            http_port=free_port,
        )

        async with running(settings, Agent(config, clock=lambda: NOW)):
            expected = set(JPK_STOCK) | set(EDI_AMOUNTS) | set(MACHINES)
            items = await wait_for_resources(free_port, expected)

    check_jpk_supplies(items)
    check_edi_supplies(items)
    check_machines(items)
    check_commercial_data_withheld(items)


@pytest.mark.mosquitto
@pytest.mark.postgres
async def test_exports_on_mosquitto_and_postgres(
    mosquitto_url: str, postgres_url: str, cluster_id: str, free_port: int, tmp_path: Path
) -> None:
    config = load_config(
        write_agent_files(tmp_path),
        variables={"CLUSTER": cluster_id, "BROKER_URL": mosquitto_url},
    )
    settings = ServerSettings(
        database=postgres_url, broker_url=mosquitto_url, cluster=cluster_id, http_port=free_port
    )
    expected = set(JPK_STOCK) | set(EDI_AMOUNTS) | set(MACHINES)
    try:
        async with running(settings, Agent(config, clock=lambda: NOW)):
            items = await wait_for_resources(free_port, expected)
    finally:
        await clear_retained(mosquitto_url, cluster_id, expected)

    check_jpk_supplies(items)
    check_edi_supplies(items)
    check_machines(items)


async def clear_retained(broker_url: str, cluster: str, resources: set[str]) -> None:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port)) as client:
        for resource in sorted(resources):
            topic = f"kooperant/v1/{cluster}/{MEMBER}/offers/{resource}"
            await client.publish(topic, b"", qos=1, retain=True)


async def test_truncated_jpk_leaves_other_exports(
    cluster_id: str, free_port: int, tmp_path: Path
) -> None:
    config_path = write_agent_files(tmp_path)
    jpk_file = tmp_path / "eksport" / "jpk" / "magazyn_2026_03.xml"
    data = jpk_file.read_bytes()
    jpk_file.write_bytes(data[: len(data) // 2])

    async with EmbeddedBroker(port=0) as broker:
        config = load_config(
            config_path, variables={"CLUSTER": cluster_id, "BROKER_URL": broker.url}
        )
        settings = ServerSettings(
            database=f"sqlite:///{tmp_path / 'kooperant.db'}",
            broker_url=broker.url,
            mqtt_protocol="3.1.1",  # the embedded amqtt broker speaks MQTT 3.1.1 only
            http_port=free_port,
        )
        agent = Agent(config, clock=lambda: NOW)

        async with running(settings, agent):
            items = await wait_for_resources(free_port, set(EDI_AMOUNTS) | set(MACHINES))
            status = agent.status()

    check_edi_supplies(items)
    check_machines(items)
    assert not set(JPK_STOCK) & set(items)
    [jpk] = [adapter for adapter in status.adapters if adapter.name == "magazyn-jpk"]
    [source] = jpk.sources
    assert source.state.value == "disconnected"
    assert source.detail is not None
    assert "magazyn_2026_03.xml:" in source.detail
