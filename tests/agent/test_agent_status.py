"""The agent's local status endpoint and ``kooperant agent status``."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner, Result

import agent.config
from adapters.base import (
    Adapter,
    AdapterSettings,
    ConnectionState,
    MachineStatus,
    Observation,
    SourceHealth,
)
from adapters.registry import load_adapter_class
from agent.cli import app
from agent.config import load_config
from agent.runner import Agent
from agent.status_cli import needs_attention
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState

SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)


class WatchedSettings(AdapterSettings):
    resources: tuple[str, ...]


class WatchedMachines(Adapter[WatchedSettings]):
    """Reports its resources as machines and one source whose health a test sets."""

    settings_model = WatchedSettings
    instances: ClassVar[list[WatchedMachines]] = []

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.source = SourceHealth(
            source="opc.tcp://127.0.0.1:4840",
            state=ConnectionState.CONNECTED,
            since=SINCE,
            reconnects=2,
            last_data=SINCE,
            errors={"bad_status": 3, "null_value": 0},
        )
        WatchedMachines.instances.append(self)

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [
            MachineStatus(resource, MachineState.EXECUTING, since=SINCE)
            for resource in self.settings.resources
        ]

    async def stop(self) -> None:
        pass

    def health(self) -> list[SourceHealth]:
        return [self.source]


class BrokenHealth(WatchedMachines):
    def health(self) -> list[SourceHealth]:
        raise RuntimeError("health report failed")


@pytest.fixture(autouse=True)
def watched_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = {"watched": WatchedMachines, "broken-health": BrokenHealth}

    def lookup(name: str) -> type[Adapter[Any]]:
        return lookups.get(name) or load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)
    WatchedMachines.instances.clear()


def write_config(
    folder: Path, broker_url: str, status: str, extra_adapter: str = "", policy: str = "share: []\n"
) -> Path:
    (folder / "policy.yaml").write_text(policy, encoding="utf-8")
    path = folder / "agent.yaml"
    text = f"""
        member: acme
        cluster: status-test
        broker:
          url: {broker_url}
          client_id: status-test-{uuid.uuid4().hex[:8]}
          # No session is kept after the test, because the machine's broker is shared.
          session_expiry_seconds: 0
        policy: policy.yaml
        status:
        {textwrap.indent(status, "  ")}
        adapters:
          - type: watched
            name: hall
            resources: [cnc-1, cnc-2]
    """
    path.write_text(textwrap.dedent(text) + extra_adapter, encoding="utf-8")
    return path


def unused_broker_url() -> str:
    return f"mqtt://127.0.0.1:{free_tcp_port()}"


@pytest.fixture
async def running_agent() -> AsyncIterator[Callable[[Path], Any]]:
    """Start agents from config files; each runs until the test ends."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def start(path: Path) -> Agent:
        running = Agent(load_config(path))
        tasks.append(asyncio.create_task(running.run(stop)))
        return running

    yield start
    stop.set()
    await asyncio.gather(*tasks)


async def invoke(*args: str) -> Result:
    """Run the CLI in a thread, so the agent in this event loop can serve its request."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def invoke_until_served(*args: str) -> Result:
    """Run the CLI until the agent's endpoint responds, within ten seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        result = await invoke(*args)
        if result.exit_code != 2 or loop.time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_status_lists_sources_and_counters(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    await running_agent(config)

    result = await invoke_until_served("status", "--config", str(config), "--json")

    document = json.loads(result.stdout)
    assert document["schema"] == "kooperant.agent-status/1"
    assert document["member"] == "acme"
    [adapter] = document["adapters"]
    assert adapter["name"] == "hall"
    assert adapter["type"] == "watched"
    assert adapter["started"] is True
    assert adapter["sources"] == [
        {
            "source": "opc.tcp://127.0.0.1:4840",
            "state": "connected",
            "since": "2026-03-02T06:00:00+00:00",
            "reconnects": 2,
            "last_data": "2026-03-02T06:00:00+00:00",
            "errors": {"bad_status": 3, "null_value": 0},
            "detail": None,
            "stale": False,
        }
    ]
    # The broker on an unused port cannot be connected, which needs attention.
    assert document["broker"]["connected"] is False
    assert result.exit_code == 1


async def test_status_shows_queued_messages(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    policy = "share:\n  - resource: cnc-1\n    fields: [state]\n"
    config = write_config(tmp_path, unused_broker_url(), f"port: {free_tcp_port()}", policy=policy)
    await running_agent(config)

    result = await invoke_until_served("status", "--config", str(config), "--json")
    table = await invoke("status", "--config", str(config))

    outbox = json.loads(result.stdout)["outbox"]
    # The broker cannot be reached, so the offer of cnc-1 waits in the outbox.
    assert outbox["queued_messages"] == 1
    assert outbox["queued_bytes"] > 0
    assert outbox["oldest_queued_age_seconds"] >= 0
    assert (outbox["dropped_messages"], outbox["rejected_messages"]) == (0, 0)
    assert "Outbox: messages waiting: 1, the oldest for " in table.stdout
    assert "dropped at the queue's limit: 0, rejected by the broker: 0" in table.stdout


def test_status_dropped_messages_need_attention() -> None:
    document = {
        "broker": {"connected": True},
        "policy_error": None,
        "adapters": [],
        "outbox": {"dropped_messages": 3, "rejected_messages": 0},
    }

    assert needs_attention(document)
    document["outbox"] = {"dropped_messages": 0, "rejected_messages": 0}
    assert not needs_attention(document)


async def test_status_table_in_english(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    config = write_config(tmp_path, unused_broker_url(), f"port: {free_tcp_port()}")
    await running_agent(config)

    result = await invoke_until_served("status", "--config", str(config))

    assert "Agent acme (cluster status-test)" in result.stdout
    assert "NOT CONNECTED" in result.stdout
    [row] = [line for line in result.stdout.splitlines() if line.startswith("hall")]
    assert row.split()[:4] == ["hall", "watched", "opc.tcp://127.0.0.1:4840", "connected"]
    assert "bad_status=3" in row
    assert "null_value" not in row


@pytest.mark.mosquitto
async def test_status_all_connected_exits_zero(
    tmp_path: Path, mosquitto_url: str, running_agent: Callable[[Path], Any]
) -> None:
    config = write_config(tmp_path, mosquitto_url, f"port: {free_tcp_port()}")
    await running_agent(config)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10

    result = await invoke_until_served("status", "--config", str(config))
    while result.exit_code != 0 and loop.time() < deadline:
        # The broker connection may come up after the endpoint.
        await asyncio.sleep(0.1)
        result = await invoke("status", "--config", str(config))

    assert result.exit_code == 0, result.output
    assert "Broker mqtt://127.0.0.1:1883: connected" in result.stdout


async def test_status_disconnected_source_in_polish(
    tmp_path: Path, running_agent: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    config = write_config(tmp_path, unused_broker_url(), f"port: {free_tcp_port()}")
    await running_agent(config)
    await invoke_until_served("status", "--config", str(config))
    [adapter] = WatchedMachines.instances
    adapter.source = SourceHealth(
        source="opc.tcp://127.0.0.1:4840",
        state=ConnectionState.DISCONNECTED,
        since=SINCE,
        detail="cannot reach OPC UA server: connection refused",
    )

    result = await invoke("status", "--config", str(config))

    assert result.exit_code == 1
    assert "rozłączony" in result.stdout
    assert "ostatni błąd opc.tcp://127.0.0.1:4840: cannot reach OPC UA server" in result.stdout


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "  stany.csv: data stale, the last export is from "),
        ("pl", "  stany.csv: dane nieaktualne, ostatni eksport z "),
    ],
)
async def test_status_stale_source_exits_1(
    tmp_path: Path,
    mosquitto_url: str,
    running_agent: Callable[[Path], Any],
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    expected: str,
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    config = write_config(tmp_path, mosquitto_url, f"port: {free_tcp_port()}")
    await running_agent(config)
    await invoke_until_served("status", "--config", str(config))
    [adapter] = WatchedMachines.instances
    adapter.source = SourceHealth(
        source="stany.csv",
        state=ConnectionState.CONNECTED,
        since=SINCE,
        last_data=SINCE,
        stale=True,
    )

    result = await invoke("status", "--config", str(config), "--json")
    document = json.loads(result.stdout)
    text = await invoke("status", "--config", str(config))

    assert result.exit_code == 1
    assert document["adapters"][0]["sources"][0]["stale"] is True
    assert text.exit_code == 1
    [line] = [line for line in text.stdout.splitlines() if line.startswith(expected)]
    assert "2026-03-02" in line


async def test_broken_health_report_still_served(
    tmp_path: Path, running_agent: Callable[[Path], Any], caplog: pytest.LogCaptureFixture
) -> None:
    extra = "  - type: broken-health\n    name: odd\n    resources: [cnc-3]\n"
    config = write_config(tmp_path, unused_broker_url(), f"port: {free_tcp_port()}", extra)
    await running_agent(config)

    result = await invoke_until_served("status", "--config", str(config), "--json")

    adapters = {item["name"]: item for item in json.loads(result.stdout)["adapters"]}
    assert adapters["odd"]["sources"] == []
    assert len(adapters["hall"]["sources"]) == 1
    assert "Adapter odd failed to report its health" in caplog.text


async def test_taken_port_logged_and_agent_runs_on(
    tmp_path: Path, running_agent: Callable[[Path], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
        running = await running_agent(config)
        for _ in range(200):
            if "Status endpoint" in caplog.text:
                break
            await asyncio.sleep(0.05)

        # The agent must outlive the failed endpoint, not stop with it.
        await asyncio.sleep(1.0)
        running_tasks = [task for task in asyncio.all_tasks() if task.get_name() == "publisher"]

    assert f"Status endpoint http://127.0.0.1:{port}/status not started" in caplog.text
    assert len(running_tasks) == 1
    assert [offer.resource for offer in running.collect_offers().offers] == ["cnc-1", "cnc-2"]


def test_status_without_running_agent(tmp_path: Path) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")

    result = CliRunner().invoke(app, ["status", "--config", str(config)])

    assert result.exit_code == 2
    assert f"No agent responds at http://127.0.0.1:{port}/status" in result.stderr
    assert f"kooperant agent run --config {config}" in result.stderr


async def test_status_of_other_agent_rejected(
    tmp_path: Path, running_agent: Callable[[Path], Any]
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    await running_agent(config)
    await invoke_until_served("status", "--config", str(config))
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other = write_config(other_folder, unused_broker_url(), f"port: {port}")
    other.write_text(other.read_text().replace("member: acme", "member: beta"), encoding="utf-8")

    result = await invoke("status", "--config", str(other))

    assert result.exit_code == 2
    assert f"The agent at http://127.0.0.1:{port}/status is member acme" in result.stderr
    assert "is for member beta" in result.stderr


async def test_status_ignores_unset_broker_variable(
    tmp_path: Path, running_agent: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    await running_agent(config)
    await invoke_until_served("status", "--config", str(config))
    # The agent may run with a password variable that the shell asking for status lacks.
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("policy:", "  password: ${KOOPERANT_TEST_UNSET}\npolicy:"))
    monkeypatch.delenv("KOOPERANT_TEST_UNSET", raising=False)

    result = await invoke("status", "--config", str(config), "--json")

    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["member"] == "acme"


def test_status_names_unset_status_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOOPERANT_TEST_UNSET", raising=False)
    config = write_config(tmp_path, unused_broker_url(), "port: ${KOOPERANT_TEST_UNSET}")

    result = CliRunner().invoke(app, ["status", "--config", str(config)])

    assert result.exit_code == 2
    assert "status.port" in result.stderr
    assert "KOOPERANT_TEST_UNSET" in result.stderr


def test_endpoint_turned_off(tmp_path: Path) -> None:
    config = write_config(tmp_path, unused_broker_url(), "enabled: false")

    result = CliRunner().invoke(app, ["status", "--config", str(config)])

    assert result.exit_code == 2
    assert "status.enabled: false" in result.stderr


@pytest.mark.parametrize(
    ("status", "key"),
    [
        ("port: seventy", "status.port"),
        ("port: 70000", "status.port"),
        ("colour: red", "status.colour"),
    ],
)
def test_invalid_status_section_named(tmp_path: Path, status: str, key: str) -> None:
    config = write_config(tmp_path, unused_broker_url(), status)

    result = CliRunner().invoke(app, ["status", "--config", str(config)])

    assert result.exit_code == 2
    assert "Cannot read the status section" in result.stderr
    # The file starts with a blank line, so the key below status: is on line 11.
    assert f"{config}:11: {key}" in result.stderr
    assert key in result.stderr


async def test_other_program_on_port(tmp_path: Path) -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(respond, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    async with server:
        result = await invoke("status", "--config", str(config))

    assert result.exit_code == 2
    assert "Something other than a kooperant agent responds" in result.stderr


async def test_status_port_from_override(
    tmp_path: Path, running_agent: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {free_tcp_port()}")
    monkeypatch.setenv("KOOPERANT_AGENT__STATUS__PORT", str(port))
    await running_agent(config)

    result = await invoke_until_served("status", "--config", str(config), "--json")

    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["member"] == "acme"


async def test_status_member_from_override(
    tmp_path: Path, running_agent: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), f"port: {port}")
    await running_agent(config)
    await invoke_until_served("status", "--config", str(config))
    monkeypatch.setenv("KOOPERANT_AGENT__MEMBER", "beta")

    result = await invoke("status", "--config", str(config))

    assert result.exit_code == 2
    assert f"The agent at http://127.0.0.1:{port}/status is member acme" in result.stderr
    assert "is for member beta" in result.stderr


def test_status_ignores_other_section_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path, unused_broker_url(), "port: 8791")
    monkeypatch.setenv("KOOPERANT_AGENT__STATUS__PORT", str(port))
    monkeypatch.setenv("KOOPERANT_AGENT__BROKER__NO_SUCH_KEY", "x")

    result = CliRunner().invoke(app, ["status", "--config", str(config)])

    assert result.exit_code == 2
    assert f"No agent responds at http://127.0.0.1:{port}/status" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KOOPERANT_AGENT__STATUS__PORT", "seventy", "status.port"),
        ("KOOPERANT_AGENT__STATUS__COLOUR", "red", "unknown key status.colour"),
        ("KOOPERANT_AGENT__STATUS", "{}", "status is a section"),
    ],
)
def test_status_bad_override_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    config = write_config(tmp_path, unused_broker_url(), "port: 8791")
    monkeypatch.setenv(variable, value)

    result = CliRunner().invoke(app, ["status", "--config", str(config)])

    assert result.exit_code == 2
    assert f"{variable}: {expected}" in result.stderr


async def test_status_export_detail_in_polish(
    tmp_path: Path, running_agent: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    config = write_config(tmp_path, unused_broker_url(), f"port: {free_tcp_port()}")
    await running_agent(config)
    await invoke_until_served("status", "--config", str(config))
    [adapter] = WatchedMachines.instances
    adapter.source = SourceHealth(
        source="/tmp/Magazyn Łódź/jpk.xml",
        state=ConnectionState.DISCONNECTED,
        since=SINCE,
        detail="the file does not exist",
        detail_code="export.missing",
        detail_values={"path": "/tmp/Magazyn Łódź/jpk.xml"},
    )

    result = await invoke("status", "--config", str(config))
    json_result = await invoke("status", "--config", str(config), "--json")

    assert result.exit_code == 1
    assert "ostatni błąd /tmp/Magazyn Łódź/jpk.xml: plik nie istnieje;" in result.stdout
    assert "the file does not exist" not in result.stdout
    [source] = json.loads(json_result.stdout)["adapters"][0]["sources"]
    assert source["detail"] == "the file does not exist"
    assert source["detail_code"] == "export.missing"
