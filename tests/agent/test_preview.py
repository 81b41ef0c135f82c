"""``kooperant agent preview``: the offers the agent would publish, computed without a broker."""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import aiomqtt
import pytest
from typer.testing import CliRunner

import agent.config
from adapters.base import Adapter, AdapterSettings, MachineStatus, Observation
from adapters.registry import load_adapter_class
from agent import preview_cli
from agent.cli import EXIT_CONFIG_ERROR, app
from agent.config import load_config
from agent.policy import Rounding
from agent.policy.notes import ENGLISH_TEMPLATES, Note
from agent.preview import preview_offers
from agent.runner import Agent
from agent.withdrawals import WithdrawalTable
from kooperant.protocol import MachineState, ResourceKind, offer_topic

REPO_ROOT = Path(__file__).resolve().parents[2]
SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
# Monday 2026-03-02 10:00 in Warsaw, inside the 06:00-14:00 shift.
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
# Top-level fields that leave whatever the rule lists; the aggregator enforces accepts_requests.
ENVELOPE = {"schema", "cluster", "member", "resource", "kind", "generated_at", "accepts_requests"}
# Values for every placeholder of the transformation notes' messages.
NOTE_VALUES = dict.fromkeys(
    [
        "public_id",
        "name",
        "days",
        "rounding",
        "grid",
        "hours",
        "min",
        "max",
        "quantity",
        "minutes",
        "label",
        "public_label",
        "members",
        "expires_at",
        "days_counted",
        "minutes_counted",
    ],
    "x",
)
POLICY = "share:\n  - resource: cnc-shared\n    fields: [name, state, free_hours]\n"


class FakeSettings(AdapterSettings):
    resources: tuple[str, ...]
    withhold_machines: bool = False


class FakeMachines(Adapter[FakeSettings]):
    """Reports every configured resource as a running machine; may withhold machine offers."""

    settings_model = FakeSettings
    stopped: ClassVar[list[str]] = []

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [
            MachineStatus(resource, MachineState.EXECUTING, since=SINCE, name=f"Machine {resource}")
            for resource in self.settings.resources
        ]

    async def stop(self) -> None:
        FakeMachines.stopped.append(self.name)

    def withheld_kinds(self) -> Mapping[ResourceKind, str]:
        if self.settings.withhold_machines:
            return {ResourceKind.MACHINE: "production plan not read"}
        return {}


@pytest.fixture(autouse=True)
def fake_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> type[Adapter[Any]]:
        return FakeMachines if name == "fake" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)
    FakeMachines.stopped.clear()


def write_config(
    folder: Path,
    broker_url: str = "mqtt://127.0.0.1:1883",
    cluster: str = "pomorskie-metal",
    withhold_machines: bool = False,
    policy: str = POLICY,
) -> Path:
    (folder / "policy.yaml").write_text(policy, encoding="utf-8")
    path = folder / "agent.yaml"
    text = f"""
        member: acme
        cluster: {cluster}
        broker:
          url: {broker_url}
          # No session is kept after the test, because the machine's broker is shared.
          session_expiry_seconds: 0
          client_id: {cluster}-agent
        policy: policy.yaml
        adapters:
          - type: fake
            name: hall
            resources: [cnc-shared, cnc-private]
            withhold_machines: {str(withhold_machines).lower()}
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on loopback that never accepts, so connections wait in its queue."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


def accepted_connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def invoke(*arguments: str, language: str = "en") -> Any:
    return CliRunner().invoke(app, ["preview", *arguments], env={"KOOPERANT_LANG": language})


async def test_preview_shares_only_rule_fields(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path), {})

    result = await preview_offers(config, wait_seconds=1.0, clock=lambda: NOW)

    assert result.ready
    assert [entry.resource for entry in result.entries] == ["cnc-private", "cnc-shared"]
    shared = result.entries[1]
    assert shared.topic == offer_topic("pomorskie-metal", "acme", "cnc-shared")
    assert shared.payload is not None
    payload = json.loads(shared.payload)
    assert set(payload) == ENVELOPE | {"name", "state", "free_hours"}
    assert payload["state"] == "Executing"

    rule = shared.decision.rule
    assert rule is not None
    assert rule.number == 1
    assert rule.source == tmp_path / "policy.yaml"
    assert rule.line == 2
    assert shared.decision.removed == ("state_since", "horizon", "free_intervals")
    assert FakeMachines.stopped == ["hall"]


async def test_preview_withholds_unnamed_resource(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path), {})

    result = await preview_offers(config, wait_seconds=1.0, clock=lambda: NOW)

    private = result.entries[0]
    assert private.resource == "cnc-private"
    assert private.kind is ResourceKind.MACHINE
    assert private.decision.offer is None
    assert private.decision.rule is None
    assert private.decision.reason == "no rule matches resource 'cnc-private'"
    assert private.payload is None
    assert private.topic is None


async def test_preview_reports_withheld_kind(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, withhold_machines=True), {})

    result = await preview_offers(config, wait_seconds=0.0, clock=lambda: NOW)

    assert not result.ready
    assert result.entries == ()
    assert result.withheld_kinds == {ResourceKind.MACHINE: "adapter hall: production plan not read"}


@pytest.mark.mosquitto
async def test_preview_payload_equals_published(
    tmp_path: Path, mosquitto_url: str, cluster_id: str
) -> None:
    config = load_config(write_config(tmp_path, mosquitto_url, cluster_id), {})
    topic = offer_topic(cluster_id, "acme", "cnc-shared")

    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-sub") as client:
        await client.subscribe(topic, qos=1)
        stop = asyncio.Event()
        running = asyncio.create_task(Agent(config, clock=lambda: NOW).run(stop))
        try:
            async with asyncio.timeout(5):
                message = await anext(aiter(client.messages))
        finally:
            stop.set()
            await running
            await client.publish(topic, b"", qos=1, retain=True)

    result = await preview_offers(config, wait_seconds=1.0, clock=lambda: NOW)

    assert result.entries[1].topic == str(message.topic)
    assert isinstance(message.payload, bytes)
    published = json.loads(message.payload)
    # The preview shows the offer before it is queued, so without the envelope.
    assert set(published) - set(json.loads(result.entries[1].payload)) == {"message_id", "seq"}
    del published["message_id"], published["seq"]
    assert json.dumps(published, separators=(",", ":")).encode() == result.entries[1].payload


def test_preview_connects_to_no_broker(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    path = write_config(tmp_path, broker_url=f"mqtt://127.0.0.1:{port}")

    result = invoke("--config", str(path), "--wait", "1")

    assert result.exit_code == 0, result.output
    assert "✔ cnc-shared" in result.stdout
    assert accepted_connections(listener) == 0
    assert not (tmp_path / "kooperant-audit.db").exists()
    # A connection made on purpose is counted, so the 0 above cannot come from a broken counter.
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert accepted_connections(listener) == 1


def test_preview_cli_names_rule_english(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    policy = tmp_path / "policy.yaml"
    topic = offer_topic("pomorskie-metal", "acme", "cnc-shared")

    result = invoke("--config", str(path), "--wait", "1")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "✘ cnc-private: withheld, no rule matches this resource"
    assert lines[1] == (
        f"✔ cnc-shared → {topic} (rule 1, {policy}:2; fields: name, state, free_hours; "
        "removed: state_since, horizon, free_intervals)"
    )
    payload = json.loads("\n".join(lines[2:]))
    assert payload["resource"] == "cnc-shared"
    assert set(payload) == ENVELOPE | {"name", "state", "free_hours"}


def test_preview_cli_polish(tmp_path: Path) -> None:
    path = write_config(tmp_path)

    result = invoke("--config", str(path), "--wait", "1", language="pl")

    assert result.exit_code == 0, result.output
    assert (
        "✘ cnc-private: wstrzymany, żadna reguła polityki nie pasuje do tego zasobu"
        in result.stdout
    )
    assert "(reguła 1, " in result.stdout
    assert "pola: name, state, free_hours; usunięte: state_since" in result.stdout


def test_preview_cli_withheld_kind(tmp_path: Path) -> None:
    path = write_config(tmp_path, withhold_machines=True)

    result = invoke("--config", str(path), "--wait", "0")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Note: not every adapter had data after 0 s")
    assert lines[1] == "✘ machine offers withheld: adapter hall: production plan not read"


def test_preview_cli_json(tmp_path: Path) -> None:
    path = write_config(tmp_path)

    result = invoke("--config", str(path), "--wait", "1", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ready"] is True
    assert document["withheld_kinds"] == []
    private, shared = document["resources"]
    assert private["shared"] is False
    assert private["reason"] == "no rule matches resource 'cnc-private'"
    assert private["payload"] is None
    assert private["rule"] is None
    assert shared["shared"] is True
    assert shared["topic"] == offer_topic("pomorskie-metal", "acme", "cnc-shared")
    assert shared["rule"] == {
        "number": 1,
        "file": str(tmp_path / "policy.yaml"),
        "line": 2,
        "fields": ["name", "state", "free_hours"],
        "expires": None,
        "requests": True,
        "expired_at": None,
    }
    assert shared["public_resource"] == "cnc-shared"
    assert shared["withheld"] is None
    assert shared["transformations"] == []
    assert shared["removed"] == ["state_since", "horizon", "free_intervals"]
    assert set(shared["payload"]) == ENVELOPE | {"name", "state", "free_hours"}
    assert private["withheld"] == "no_rule"
    assert private["public_resource"] is None


TRANSFORMING_POLICY = """\
share:
  - resource: cnc-shared
    publish_as: frezarka
    name: Frezarka
    fields: [name, free_intervals]
    round: hour
  - resource: cnc-private
    publish_as: tajna
    fields: [name]
    expires: 2020-01-31
"""


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "  • published as frezarka",
                "  • name replaced by “Frezarka”",
                "  • free_intervals rounded to hour",
            ],
        ),
        (
            "pl",
            [
                "  • publikowany jako frezarka",
                "  • nazwa zastąpiona przez „Frezarka”",
                "  • free_intervals zaokrąglone do pełnych godzin",
            ],
        ),
    ],
)
def test_preview_cli_lists_transformations(
    tmp_path: Path, language: str, expected: list[str]
) -> None:
    path = write_config(tmp_path, policy=TRANSFORMING_POLICY)
    topic = offer_topic("pomorskie-metal", "acme", "frezarka")

    result = invoke("--config", str(path), "--wait", "1", language=language)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"✔ cnc-shared → {topic} (")
    assert lines[2:5] == expected
    assert json.loads("\n".join(lines[5:]))["resource"] == "frezarka"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "✘ cnc-private: withheld, the share as tajna expired on 2020-01-31 (rule 2, {path}:7)",
        ),
        (
            "pl",
            "✘ cnc-private: wstrzymany, udostępnianie jako tajna wygasło 2020-01-31 "
            "(reguła 2, {path}:7)",
        ),
    ],
)
def test_preview_cli_names_expired_rule(tmp_path: Path, language: str, expected: str) -> None:
    path = write_config(tmp_path, policy=TRANSFORMING_POLICY)

    result = invoke("--config", str(path), "--wait", "1", language=language)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == expected.format(path=tmp_path / "policy.yaml")


def test_preview_json_expired_rule(tmp_path: Path) -> None:
    path = write_config(tmp_path, policy=TRANSFORMING_POLICY)

    result = invoke("--config", str(path), "--wait", "1", "--json")

    private, shared = json.loads(result.stdout)["resources"]
    assert private["shared"] is False
    assert private["withheld"] == "expired"
    assert private["public_resource"] == "tajna"
    assert private["topic"] is None
    assert private["rule"]["expires"] == "2020-01-31"
    assert private["rule"]["expired_at"] == "2020-02-01T00:00:00+01:00"
    assert private["reason"] == (
        f"rule 2 ({tmp_path / 'policy.yaml'}:7) expired at 2020-02-01T00:00:00+01:00"
    )
    assert shared["transformations"] == [
        "published as frezarka",
        "name replaced by 'Frezarka'",
        "free_intervals rounded to hour",
    ]


CLOSED_POLICY = """\
share:
  - resource: cnc-shared
    fields: [name]
    requests: false
  - resource: cnc-private
    fields: [name]
"""


@pytest.mark.parametrize(
    ("language", "note"),
    [
        ("en", "  • capacity requests switched off: the aggregator rejects them"),
        ("pl", "  • zapytania wyłączone: agregator je odrzuca"),
    ],
)
def test_preview_cli_requests_switched_off(tmp_path: Path, language: str, note: str) -> None:
    path = write_config(tmp_path, policy=CLOSED_POLICY)

    result = invoke("--config", str(path), "--wait", "1", language=language)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    private_end = lines.index("}")
    private = json.loads("\n".join(lines[1 : private_end + 1]))
    assert lines[private_end + 1].startswith("✔ cnc-shared → ")
    assert lines[private_end + 2] == note
    shared = json.loads("\n".join(lines[private_end + 3 :]))
    assert private["accepts_requests"] is True
    assert shared["accepts_requests"] is False


def test_preview_json_requests_switched_off(tmp_path: Path) -> None:
    path = write_config(tmp_path, policy=CLOSED_POLICY)

    result = invoke("--config", str(path), "--wait", "1", "--json")

    private, shared = json.loads(result.stdout)["resources"]
    assert shared["rule"]["requests"] is False
    assert shared["payload"]["accepts_requests"] is False
    assert shared["transformations"] == [
        "capacity requests switched off: the aggregator rejects them"
    ]
    assert private["rule"]["requests"] is True
    assert private["payload"]["accepts_requests"] is True
    assert private["transformations"] == []


def test_note_codes_all_localized() -> None:
    for code in ENGLISH_TEMPLATES:
        for language in ("pl", "en"):
            assert preview_cli._(f"note.{code}", language, **NOTE_VALUES), code


@pytest.mark.parametrize(
    ("note", "polish", "english"),
    [
        (
            Note("band.free_hours.open", {"min": "80"}),
            "free_hours podane jako przedział 80 i więcej",
            "free_hours shown as the band 80 or more",
        ),
        (
            Note("band.free_hours", {"min": "20", "max": "40"}),
            "free_hours podane jako przedział [20, 40)",
            "free_hours shown as the band [20, 40)",
        ),
        (
            Note("band.amount.open", {"quantity": "pallet_places", "min": "200"}),
            "ilość pallet_places podana jako przedział 200 i więcej",
            "amount pallet_places shown as the band 200 or more",
        ),
        (
            Note("round.intervals", {"rounding": "shift"}),
            "free_intervals zaokrąglone do pełnych zmian",
            "free_intervals rounded to shift",
        ),
        (
            Note("round.state_since", {"rounding": "half_day"}),
            "state_since zaokrąglone w dół do pełnych połówek doby",
            "state_since rounded down to half_day",
        ),
        (
            Note("round.horizon", {"grid": "day"}),
            "horyzont poszerzony do pełnych dni",
            "horizon widened to the day grid",
        ),
        (
            Note("horizon", {"days": "1"}),
            "wolny czas ograniczony do 1 dnia od teraz",
            "free time limited to 1 day from now",
        ),
        (
            Note("horizon", {"days": "2"}),
            "wolny czas ograniczony do 2 dni od teraz",
            "free time limited to 2 days from now",
        ),
        (
            Note("horizon", {"days": "5"}),
            "wolny czas ograniczony do 5 dni od teraz",
            "free time limited to 5 days from now",
        ),
        (
            Note("delay", {"minutes": "1"}),
            "state i state_since sprzed 1 minuty",
            "state and state_since as they were 1 minute ago",
        ),
        (
            Note("delay", {"minutes": "30"}),
            "state i state_since sprzed 30 minut",
            "state and state_since as they were 30 minutes ago",
        ),
        (
            Note("delay.unknown", {"minutes": "22"}),
            "state i state_since pominięte: stan sprzed 22 minut nie jest znany",
            "state and state_since left out: no state known for 22 minutes ago",
        ),
    ],
)
def test_format_note_per_language(
    monkeypatch: pytest.MonkeyPatch, note: Note, polish: str, english: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    shown_in_polish = preview_cli.format_note(note)
    monkeypatch.setenv("KOOPERANT_LANG", "en")
    shown_in_english = preview_cli.format_note(note)

    assert shown_in_polish == polish
    assert shown_in_english == english
    assert shown_in_english == note.english


def test_rounding_units_all_localized() -> None:
    for rounding in Rounding:
        for language in ("pl", "en"):
            assert preview_cli._(f"unit.{rounding.value}", language), rounding


@pytest.mark.parametrize(
    ("language", "heading", "problem"),
    [
        ("en", "Invalid configuration", "broker.url: invalid URL 'mqt://x'"),
        ("pl", "Błędna konfiguracja", "broker.url: nieprawidłowy adres 'mqt://x'"),
    ],
)
def test_preview_invalid_config_exits_2(
    tmp_path: Path, language: str, heading: str, problem: str
) -> None:
    path = write_config(tmp_path, broker_url="mqt://x")

    result = invoke("--config", str(path), language=language)

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert heading in result.stderr
    assert f"{path}:5: {problem}" in result.stderr
    assert result.stdout == ""


def test_preview_missing_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    result = invoke("--config", str(missing))

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert f"{missing}: file not found" in result.stderr


@pytest.mark.parametrize("wait", ["-1", "nan", "inf"])
def test_preview_invalid_wait_exits_2(tmp_path: Path, wait: str) -> None:
    path = write_config(tmp_path)

    result = invoke("--config", str(path), "--wait", wait)

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert "Invalid value for --wait" in result.stderr
    assert "e.g. --wait 5" in result.stderr
    assert FakeMachines.stopped == []


def test_preview_example_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Copies, so that nothing the agent writes next to its config lands in the repository.
    example = tmp_path / "agent.example.yaml"
    policy = tmp_path / "policy.example.yaml"
    for copy in (example, policy):
        copy.write_bytes((REPO_ROOT / "config" / copy.name).read_bytes())
    plan = tmp_path / "plan.csv"
    plan.write_text(
        "Zlecenie;Maszyna;Początek;Koniec\n"
        "ZP/2026/0001;FREZ-01;02.03.2026 06:00;02.03.2026 11:00\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KOOPERANT_SCHEDULE_CSV", str(plan))
    policy_lines = policy.read_text(encoding="utf-8").splitlines()
    rule_line = policy_lines.index("  - resource: cnc-5ax-01") + 1
    server_line = policy_lines.index("  - resource: server-01") + 1

    result = invoke("--config", str(example), "--wait", "8")

    assert result.exit_code == 0, result.output
    assert "Note:" not in result.stdout
    topic = offer_topic("pomorskie-metal", "acme-metal", "frezarka-5osi")
    assert f"✔ cnc-5ax-01 → {topic} (rule 1, {policy}:{rule_line}; " in result.stdout
    assert "  • free_intervals rounded to shift" in result.stdout
    assert "✘ laser-02: withheld, no rule matches this resource" in result.stdout
    server_topic = offer_topic("pomorskie-metal", "acme-metal", "server-01")
    assert f"✔ server-01 → {server_topic} (rule 2, {policy}:{server_line}; " in result.stdout
    assert "  • amount label “/” renamed to “system”" in result.stdout


def record_withdrawal(config_path: Path, resource: str) -> None:
    with WithdrawalTable(config_path.parent / "kooperant-audit.db") as table:
        table.add(resource, True, datetime(2026, 3, 2, 8, 30, tzinfo=UTC))


async def test_preview_withholds_owner_withdrawal(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    record_withdrawal(path, "cnc-shared")

    result = await preview_offers(load_config(path, {}), wait_seconds=1.0, clock=lambda: NOW)

    shared = result.entries[1]
    assert shared.resource == "cnc-shared"
    assert shared.decision.offer is not None
    assert shared.withdrawal is not None
    assert shared.withdrawal.delete_history is True
    assert shared.payload is None
    assert shared.topic is None


def test_preview_cli_names_owner_withdrawal(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    record_withdrawal(path, "cnc-shared")

    text = invoke("--config", str(path), "--wait", "1")
    document = json.loads(invoke("--config", str(path), "--wait", "1", "--json").stdout)

    assert text.exit_code == 0, text.output
    assert "✘ cnc-shared: withheld, the owner withdrew the offer on" in text.stdout
    assert "kooperant agent restore cnc-shared" in text.stdout
    shared = document["resources"][1]
    assert shared["shared"] is False
    assert shared["payload"] is None
    assert shared["withdrawn"]["delete_history"] is True


async def test_preview_creates_no_audit_file(tmp_path: Path) -> None:
    path = write_config(tmp_path)

    await preview_offers(load_config(path, {}), wait_seconds=1.0, clock=lambda: NOW)

    assert not (tmp_path / "kooperant-audit.db").exists()
