"""``kooperant agent check``: config and policy errors, lint warnings, exit codes, languages."""

from __future__ import annotations

import json
import shutil
import socket
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

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
from agent import check_cli
from agent.check import check_policy
from agent.check_cli import EXIT_WARNINGS
from agent.cli import EXIT_CONFIG_ERROR, app
from agent.config import load_config
from agent.policy.lint import ENGLISH_TEMPLATES
from kooperant.protocol import MachineState, ResourceKind

REPO_ROOT = Path(__file__).resolve().parents[2]
SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
CLEAN_POLICY = "share:\n  - kind: machine\n    fields: [name, state]\n"
# Rule 1 names a machine the agent does not have; rule 2 sets a name it never sends.
WARNING_POLICY = (
    "share:\n"
    "  - resource: press-9\n"
    "    fields: [name]\n"
    "  - kind: machine\n"
    "    name: Maszyna\n"
    "    fields: [state]\n"
)


class FakeSettings(AdapterSettings):
    resources: tuple[str, ...]


class FakeMachines(Adapter[FakeSettings]):
    """Reports every configured resource as a running machine."""

    settings_model = FakeSettings

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [
            MachineStatus(resource, MachineState.EXECUTING, since=SINCE)
            for resource in self.settings.resources
        ]

    async def stop(self) -> None:
        pass


class FailingExportSettings(AdapterSettings):
    stale: bool = False


class FailingExport(Adapter[FailingExportSettings]):
    """Reports one export source that failed to read, or one whose data is stale."""

    settings_model = FailingExportSettings

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return []

    async def stop(self) -> None:
        pass

    def health(self) -> list[SourceHealth]:
        if self.settings.stale:
            return [SourceHealth("stany.csv", ConnectionState.CONNECTED, SINCE, stale=True)]
        detail = "JPK_MAG.xml: PZ/PZWiersz[3]/IloscPrzyjetaPZ: invalid number 'dużo'"
        return [SourceHealth("JPK_MAG.xml", ConnectionState.DISCONNECTED, SINCE, detail=detail)]


@pytest.fixture(autouse=True)
def fake_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes: dict[str, type[Adapter[Any]]] = {"fake": FakeMachines, "failing": FailingExport}

    def lookup(name: str) -> type[Adapter[Any]]:
        return fakes.get(name) or load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)


def write_config(
    folder: Path,
    policy: str,
    broker_url: str = "mqtt://127.0.0.1:1883",
    horizon_days: int = 14,
    extra_adapter: str = "",
) -> Path:
    (folder / "policy.yaml").write_text(policy, encoding="utf-8")
    path = folder / "agent.yaml"
    text = f"""
        member: acme
        cluster: pomorskie-metal
        horizon_days: {horizon_days}
        broker:
          url: {broker_url}
        policy: policy.yaml
        resources:
          cnc-1: {{name: DMU 50, kind: machine}}
        adapters:
          - type: fake
            name: hall
            resources: [cnc-1, laser-2]
    """
    text = textwrap.dedent(text) + textwrap.indent(textwrap.dedent(extra_adapter), "  ")
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*arguments: str, language: str = "en") -> Any:
    return CliRunner().invoke(app, ["check", *arguments], env={"KOOPERANT_LANG": language})


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "✔ Policy {policy} is valid and has no warnings; resources checked (2): cnc-1, "
            "laser-2.",
        ),
        (
            "pl",
            "✔ Polityka {policy} jest poprawna i bez ostrzeżeń; sprawdzone zasoby (2): cnc-1, "
            "laser-2.",
        ),
    ],
)
def test_check_clean_exits_0(tmp_path: Path, language: str, expected: str) -> None:
    path = write_config(tmp_path, CLEAN_POLICY)

    result = invoke("--config", str(path), "--wait", "1", language=language)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [expected.format(policy=tmp_path / "policy.yaml")]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "⚠ {policy}:2: share[0]: rule 1 matches no known resource (known: cnc-1, "
                "laser-2); check its selectors",
                "⚠ {policy}:5: share[1].name: name “Maszyna” never leaves because 'name' is "
                "not in fields; add name to fields or remove the name",
                "Policy {policy} is valid, but the check found warnings: 2; resources checked "
                "(2): cnc-1, laser-2.",
            ],
        ),
        (
            "pl",
            [
                "⚠ {policy}:2: share[0]: reguła 1 nie pasuje do żadnego znanego zasobu (znane: "
                "cnc-1, laser-2); sprawdź jej selektory",
                "⚠ {policy}:5: share[1].name: nazwa „Maszyna” nie zostanie wysłana, bo pola name "
                "nie ma w fields; dodaj name do fields albo usuń nazwę",
                "Polityka {policy} jest poprawna, ale sprawdzenie zgłosiło ostrzeżenia: 2; "
                "sprawdzone zasoby (2): cnc-1, laser-2.",
            ],
        ),
    ],
)
def test_check_warnings_exit_1(tmp_path: Path, language: str, expected: list[str]) -> None:
    path = write_config(tmp_path, WARNING_POLICY)

    result = invoke("--config", str(path), "--wait", "1", language=language)

    assert result.exit_code == EXIT_WARNINGS
    policy = tmp_path / "policy.yaml"
    assert result.stdout.splitlines() == [line.format(policy=policy) for line in expected]


MISSING_PLAN_ADAPTER = """
    - type: schedule_csv
      name: plan
      path: missing-plan.csv
"""


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "⚠ machine offers withheld: adapter plan: production plan {plan} not read: the "
                "file does not exist. The agent publishes no offer of this kind until the adapter "
                "has its data; check the data source. Only resources of this kind declared in the "
                "config are known.",
                "⚠ adapter plan, source {plan}: the file does not exist; check the path and "
                "that the ERP program writes the export",
                "Policy {policy} is valid, but the check found warnings: 2; resources checked "
                "(1): cnc-1.",
            ],
        ),
        (
            "pl",
            [
                "⚠ oferty rodzaju machine wstrzymane: adapter plan: production plan {plan} not "
                "read: the file does not exist. Agent nie opublikuje żadnej oferty tego rodzaju, "
                "dopóki adapter nie ma danych; sprawdź źródło danych. Znane są tylko zasoby tego "
                "rodzaju opisane w konfiguracji.",
                "⚠ adapter plan, źródło {plan}: plik nie istnieje; sprawdź ścieżkę i czy "
                "program ERP zapisuje eksport",
                "Polityka {policy} jest poprawna, ale sprawdzenie zgłosiło ostrzeżenia: 2; "
                "sprawdzone zasoby (1): cnc-1.",
            ],
        ),
    ],
)
def test_check_withheld_kind_exits_1(tmp_path: Path, language: str, expected: list[str]) -> None:
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=MISSING_PLAN_ADAPTER)

    result = invoke("--config", str(path), "--wait", "0.5", language=language)

    assert result.exit_code == EXIT_WARNINGS, result.output
    plan = tmp_path / "missing-plan.csv"
    policy = tmp_path / "policy.yaml"
    lines = result.stdout.splitlines()
    assert lines[-3:] == [line.format(plan=plan, policy=policy) for line in expected]


def test_check_withheld_kind_json(tmp_path: Path) -> None:
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=MISSING_PLAN_ADAPTER)

    result = invoke("--config", str(path), "--wait", "0.5", "--json")

    assert result.exit_code == EXIT_WARNINGS, result.output
    document = json.loads(result.stdout)
    assert document["clean"] is False
    assert document["warnings"] == []
    assert document["withheld_kinds"] == [
        {
            "kind": "machine",
            "reason": f"adapter plan: production plan {tmp_path / 'missing-plan.csv'} not read: "
            "the file does not exist",
        }
    ]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "⚠ adapter jpk, source JPK_MAG.xml: JPK_MAG.xml: PZ/PZWiersz[3]/IloscPrzyjetaPZ: "
            "invalid number 'dużo'",
        ),
        (
            "pl",
            "⚠ adapter jpk, źródło JPK_MAG.xml: JPK_MAG.xml: PZ/PZWiersz[3]/IloscPrzyjetaPZ: "
            "invalid number 'dużo'",
        ),
    ],
)
def test_check_failed_source_exits_1(tmp_path: Path, language: str, expected: str) -> None:
    adapter = "\n    - type: failing\n      name: jpk\n"
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=adapter)

    result = invoke("--config", str(path), "--wait", "0.5", language=language)

    assert result.exit_code == EXIT_WARNINGS, result.output
    assert expected in result.stdout.splitlines()


def test_check_stale_source_json(tmp_path: Path) -> None:
    adapter = "\n    - type: failing\n      name: stany\n      stale: true\n"
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=adapter)

    result = invoke("--config", str(path), "--wait", "0.5", "--json")

    assert result.exit_code == EXIT_WARNINGS, result.output
    document = json.loads(result.stdout)
    assert document["clean"] is False
    assert document["source_problems"] == [
        {"adapter": "stany", "source": "stany.csv", "detail": None, "stale": True}
    ]


def test_check_withheld_kind_ignored_offline(tmp_path: Path) -> None:
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=MISSING_PLAN_ADAPTER)

    result = invoke("--config", str(path), "--offline")

    assert result.exit_code == 0, result.output
    assert "⚠" not in result.stdout


@pytest.mark.parametrize(
    ("language", "heading", "problem"),
    [
        ("en", "Invalid configuration or policy", "share[0].round: input should be '15min'"),
        ("pl", "Błędna konfiguracja lub polityka", "share[0].round: dozwolone wartości: '15min'"),
    ],
)
def test_check_invalid_policy_exits_2(
    tmp_path: Path, language: str, heading: str, problem: str
) -> None:
    path = write_config(
        tmp_path, "share:\n  - resource: cnc-1\n    fields: [name]\n    round: week\n"
    )

    result = invoke("--config", str(path), language=language)

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert heading in result.stderr
    assert f"{tmp_path / 'policy.yaml'}:4: {problem}" in result.stderr
    assert result.stdout == ""


def test_check_invalid_config_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, CLEAN_POLICY, broker_url="mqt://x")

    result = invoke("--config", str(path))

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert f"{path}:6: broker.url: invalid URL 'mqt://x'" in result.stderr


def test_check_missing_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    result = invoke("--config", str(missing))

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert f"{missing}: file not found" in result.stderr


@pytest.mark.parametrize("wait", ["-1", "nan"])
def test_check_invalid_wait_exits_2(tmp_path: Path, wait: str) -> None:
    path = write_config(tmp_path, CLEAN_POLICY)

    result = invoke("--config", str(path), "--wait", wait)

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert "Invalid value for --wait" in result.stderr


def test_check_offline_uses_declared_resources(tmp_path: Path) -> None:
    policy = "share:\n  - resource: laser-2\n    fields: [name]\n"
    path = write_config(tmp_path, policy)

    online = invoke("--config", str(path), "--wait", "1")
    offline = invoke("--config", str(path), "--offline")

    assert online.exit_code == 0, online.output
    assert offline.exit_code == EXIT_WARNINGS
    assert "rule 1 matches no known resource (known: cnc-1)" in offline.stdout


def test_check_json_warnings(tmp_path: Path) -> None:
    path = write_config(tmp_path, WARNING_POLICY)

    result = invoke("--config", str(path), "--offline", "--json", language="pl")

    assert result.exit_code == EXIT_WARNINGS
    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert document["resources"] == {"cnc-1": "machine"}
    assert document["errors"] == []
    assert document["warnings"][0] == {
        "file": str(tmp_path / "policy.yaml"),
        "line": 2,
        "key": "share[0]",
        "message": "rule 1 matches no known resource (known: cnc-1); check its selectors",
        "code": "no_match",
    }
    assert [warning["code"] for warning in document["warnings"]] == ["no_match", "name_unlisted"]


def test_check_json_errors(tmp_path: Path) -> None:
    path = write_config(tmp_path, "share:\n  - fields: [name]\n")

    result = invoke("--config", str(path), "--json")

    assert result.exit_code == EXIT_CONFIG_ERROR
    assert json.loads(result.stdout) == {
        "valid": False,
        "errors": [
            {
                "file": str(tmp_path / "policy.yaml"),
                "line": 2,
                "key": "share[0]",
                "message": "rule has no selector; add resource:, kind: or tag:",
            }
        ],
        "warnings": [],
    }


async def test_check_policy_horizon_warning(tmp_path: Path) -> None:
    policy = "share:\n  - kind: machine\n    fields: [free_hours]\n    horizon_days: 30\n"
    config = load_config(write_config(tmp_path, policy, horizon_days=7), {})

    result = await check_policy(config, offline=True)

    assert result.ready
    assert [warning.key for warning in result.warnings] == ["share[0].horizon_days"]
    assert result.resources == {"cnc-1": ResourceKind.MACHINE}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket listening on loopback that never accepts, so connections wait in its queue."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


def test_check_connects_to_no_broker(tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    path = write_config(tmp_path, CLEAN_POLICY, broker_url=f"mqtt://127.0.0.1:{port}")

    result = invoke("--config", str(path), "--wait", "1")

    assert result.exit_code == 0, result.output
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert not (tmp_path / "kooperant-audit.db").exists()


def test_lint_codes_all_localized() -> None:
    values = dict.fromkeys(
        [
            "number",
            "known",
            "resources",
            "first",
            "first_location",
            "expires_at",
            "days",
            "agent_days",
            "quantity",
            "field",
            "name",
            "public_id",
        ],
        "x",
    )

    for code in ENGLISH_TEMPLATES:
        for language in ("pl", "en"):
            assert check_cli._(f"lint.{code}", language, **values), code


def test_check_example_policies_clean(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(REPO_ROOT / "config" / "policies", folder)

    result = invoke("--config", str(folder / "agent.yaml"), "--offline")

    assert result.exit_code == 0, result.output
    assert "resources checked (5)" in result.stdout


def test_check_name_too_long_export_exits_1(tmp_path: Path) -> None:
    # Linux allows at most 255 bytes in one path component, so stat fails with ENAMETOOLONG.
    export = tmp_path / ("d" * 300) / "stany.csv"
    adapter = f'\n    - type: warehouse\n      name: magazyny\n      path: "{export}"\n'
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=adapter)

    result = invoke("--config", str(path), "--wait", "2")

    assert result.exit_code == EXIT_WARNINGS, result.output
    expected = (
        f"⚠ adapter magazyny, source {export}: cannot check {export}: the name is too long for "
        "the file system; shorten the path"
    )
    assert expected in result.stdout.splitlines()
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("language", "detail"),
    [
        ("pl", "plik nie istnieje; sprawdź ścieżkę i czy program ERP zapisuje eksport"),
        ("en", "the file does not exist; check the path and that the ERP program writes"),
    ],
)
def test_check_missing_export_in_language(tmp_path: Path, language: str, detail: str) -> None:
    export = tmp_path / "Magazyn Łódź" / "stany.csv"
    adapter = f'\n    - type: warehouse\n      name: magazyny\n      path: "{export}"\n'
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=adapter)

    result = invoke("--config", str(path), "--wait", "2", language=language)

    assert result.exit_code == EXIT_WARNINGS, result.output
    source = "źródło" if language == "pl" else "source"
    assert f"⚠ adapter magazyny, {source} {export}: {detail}" in result.stdout


def test_check_name_too_long_in_polish(tmp_path: Path) -> None:
    export = tmp_path / ("d" * 300) / "stany.csv"
    adapter = f'\n    - type: warehouse\n      name: magazyny\n      path: "{export}"\n'
    path = write_config(tmp_path, CLEAN_POLICY, extra_adapter=adapter)

    result = invoke("--config", str(path), "--wait", "2", "--json", language="pl")

    document = json.loads(result.stdout)
    assert document["source_problems"][0]["detail"] == (
        f"cannot check {export}: File name too long"
    )
    result = invoke("--config", str(path), "--wait", "2", language="pl")
    assert "nazwa jest za długa dla systemu plików; skróć ścieżkę" in result.stdout
