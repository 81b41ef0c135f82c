"""Wire capture: nothing internal leaves the company under a restrictive policy.

A full agent runs with real adapters (an OPC UA Machinery server, an ERP schedule CSV in cp1250,
the host's free disk) and one faked ERP supplies source, against a Mosquitto of the test's own.
The agent talks to the broker through a proxy that records every byte it sends, and a subscriber
on ``#`` records every message the broker hands out. During the run a policy edit removes a rule,
so withdrawals are captured as well. No internal identifier may appear in any captured byte:
asset ids, machine names and serial numbers, ERP codes and order numbers, supplier and customer
names, prices, the host name, the host's IP addresses and file paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import psutil
import pytest

import agent.config
from adapters.base import Adapter, AdapterSettings, Observation, SupplyStock
from adapters.registry import load_adapter_class
from agent.config import load_config
from agent.runner import Agent
from kooperant.protocol import Amount, Price
from tests.support.machinery_server import MachineSpec, machinery_server
from tests.support.mosquitto import OwnMosquitto
from tests.support.recording_proxy import RecordingProxy

# Monday 2026-12-07 08:00 in Warsaw, inside the 06:00-14:00 shift.
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
CLUSTER = "wire-capture"
SUPPLIER = "Huta Testowa Sp. z o.o."
CUSTOMER = "Stocznia Testowa S.A."
UNIT_PRICE = 4321.77

MACHINES = (
    MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing"),
    MachineSpec("Lathe B2", "Mazak", "QTU 250", "MZ-2502", "NotExecuting"),
    MachineSpec("Secret-Prototype", "Own build", "X1", "P-0001", "Executing"),
)

SCHEDULE_CSV = (
    "Zlecenie;Maszyna;Początek;Koniec;Ilość\r\n"
    "ZP/2026/0001 wałek;FREZ-A1;07.12.2026 10:00;07.12.2026 12:00;12,5\r\n"
    "ZP/2026/0002 tuleja;TOKARKA-B2;08.12.2026 06:00;08.12.2026 08:00;3\r\n"
)

AGENT_YAML = """\
member: acme-metal
cluster: wire-capture
timezone: Europe/Warsaw
horizon_days: 3
broker:
  url: ${BROKER_URL}
calendar:
  shifts:
    - {days: [mon, tue, wed, thu, fri], start: "06:00", end: "14:00"}
policy: policy.yaml
resources:
  mill-a1:
    {name: Hermle C 42 U H-4201, kind: machine, capabilities: [5-axis-milling], tags: [hala-a]}
  lathe-b2: {name: Mazak QTU 250, kind: machine, tags: [hala-a]}
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
  - type: host
    name: serwerownia
    resource: server-01
    display_name: ${HOST_NAME}
    mounts: ["${MOUNT}"]
  - type: fake_erp_supplies
    name: magazyn
"""

RULES = {
    "mill": """\
  - resource: mill-a1
    publish_as: frezarka-1
    name: Frezarka 5-osiowa
    fields: [name, capabilities, state, free_hours, free_intervals, horizon]
    round: shift
""",
    "lathe": """\
  - resource: lathe-b2
    publish_as: tokarka-1
    fields: [free_hours]
    bands: {free_hours: [0, 4, 8, 16]}
""",
    "host": """\
  - resource: server-01
    publish_as: serwer-1
    fields: [amounts]
""",
    "supplies": """\
  - resource: bl-s235-2
    publish_as: blacha-2mm
    name: Blacha S235 2 mm
    fields: [all]
""",
}
PUBLIC_IDS = {"frezarka-1", "tokarka-1", "serwer-1", "blacha-2mm"}


class FakeErpSettings(AdapterSettings):
    pass


class FakeErpSupplies(Adapter[FakeErpSettings]):
    """Surplus stock as an ERP export would report it, with commercial data.

    The one faked seam of this test: no adapter reads supplies from an ERP export yet.
    """

    settings_model = FakeErpSettings

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [
            SupplyStock(
                resource="bl-s235-2",
                name="BL-S235-2 blacha zimnowalcowana",
                amounts=(Amount("stock", 120.0, "sheet", label="Magazyn M3/regał 7"),),
                price=Price(UNIT_PRICE, "PLN", "sheet"),
                suppliers=(SUPPLIER,),
                customers=(CUSTOMER,),
            )
        ]

    async def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def fake_erp_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> type[Adapter[Any]]:
        return FakeErpSupplies if name == "fake_erp_supplies" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)


def write_policy(folder: Path, *rule_names: str) -> None:
    text = "share:\n" + "".join(RULES[name] for name in rule_names)
    # Replace in one step so the agent never reads a half-written file.
    staging = folder / "policy.yaml.new"
    staging.write_text(text, encoding="utf-8")
    staging.replace(folder / "policy.yaml")


def host_addresses() -> set[str]:
    """The IPv4 and IPv6 addresses of every interface of this machine, and loopback."""
    addresses = {"127.0.0.1"}
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                addresses.add(entry.address.split("%")[0])
    # "::1" is too short to search for in JSON without matching unrelated text.
    return {address for address in addresses if len(address) > 3}


def forbidden_strings(folder: Path) -> set[str]:
    machine_strings = {
        text
        for spec in MACHINES
        for text in (spec.browse_name, spec.manufacturer, spec.serial_number)
        if len(text) > 2
    }
    erp_strings = {"FREZ-A1", "TOKARKA-B2", "ZP/2026", "wałek", "tuleja", "BL-S235-2", "M3/regał"}
    internal_ids = {"mill-a1", "lathe-b2", "secret-prototype", "server-01", "bl-s235-2", "hala-a"}
    commercial = {SUPPLIER, CUSTOMER, "Huta", "Stocznia", str(UNIT_PRICE), "4321"}
    paths = {str(folder), str(Path.home()), "plan.csv", "policy.yaml", "opc.tcp"}
    hostname = socket.gethostname()
    names = {hostname} if len(hostname) >= 4 else set()
    return (
        machine_strings | erp_strings | internal_ids | commercial | paths | names | host_addresses()
    )


@contextlib.asynccontextmanager
async def recording_subscriber(port: int) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Yield the list into which every message the broker hands out on ``#`` is appended."""
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client("127.0.0.1", port, identifier="wire-capture-sub") as client:
        await client.subscribe("#", qos=1)

        async def record() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                received.append((str(message.topic), payload))

        task = asyncio.create_task(record())
        try:
            yield received
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_until(condition: Any, description: str, max_seconds: float = 20.0) -> None:
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {max_seconds} s waiting until {description}")


def latest_payloads(received: list[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for topic, payload in received:
        if "/offers/" in topic and payload:
            latest[topic.rsplit("/", 1)[1]] = json.loads(payload)
    return latest


@pytest.mark.nodesets
async def test_no_internal_identifier_on_wire(nodesets_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "plan.csv").write_bytes(SCHEDULE_CSV.encode("cp1250"))
    (tmp_path / "agent.yaml").write_text(AGENT_YAML, encoding="utf-8")
    write_policy(tmp_path, "mill", "lathe", "host", "supplies")
    broker = OwnMosquitto(tmp_path)
    broker.start()
    try:
        async with (
            machinery_server(nodesets_dir, MACHINES) as opcua,
            RecordingProxy("127.0.0.1", broker.port).running() as proxy,
            recording_subscriber(broker.port) as received,
        ):
            config = load_config(
                tmp_path / "agent.yaml",
                variables={
                    "BROKER_URL": f"mqtt://127.0.0.1:{proxy.port}",
                    "OPCUA_URL": opcua.endpoint,
                    "HOST_NAME": socket.gethostname(),
                    "MOUNT": str(tmp_path),
                },
            )
            agent_under_test = Agent(config, clock=lambda: NOW)
            stop = asyncio.Event()
            running = asyncio.create_task(agent_under_test.run(stop))
            try:
                await wait_until(
                    lambda: set(latest_payloads(received)) >= PUBLIC_IDS,
                    f"offers {sorted(PUBLIC_IDS)} reached the subscriber",
                )
                internal = agent_under_test.collect_offers().offers

                write_policy(tmp_path, "mill", "host", "supplies")
                await wait_until(
                    lambda: any("/withdrawals/tokarka-1" in topic for topic, _ in received),
                    "the withdrawal of tokarka-1 reached the subscriber",
                )
            finally:
                stop.set()
                await running
    finally:
        broker.stop()

    # The internal data did reach the agent, so its absence on the wire is the policy's doing.
    internal_text = repr(internal)
    assert "mill-a1" in internal_text
    assert SUPPLIER in internal_text
    assert str(UNIT_PRICE) in internal_text

    wire = bytes(proxy.client_bytes) + b"".join(
        topic.encode() + payload for topic, payload in received
    )
    leaks = sorted(text for text in forbidden_strings(tmp_path) if text.encode() in wire)
    assert leaks == []

    offers = latest_payloads(received)
    assert offers["frezarka-1"]["name"] == "Frezarka 5-osiowa"
    assert "price" not in offers["blacha-2mm"]
    assert "suppliers" not in offers["blacha-2mm"]
    assert "free_hours" not in offers["tokarka-1"]
    assert offers["tokarka-1"]["free_hours_band"] is not None
    assert "label" not in offers["serwer-1"]["amounts"][0]
