"""The JSON Schemas that ``kooperant agent init`` writes next to agent.yaml and policy.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from agent.cli import app
from agent.config import load_config
from agent.config_schema import agent_config_json_schema
from agent.config_writer import TargetExistsError, write_files
from agent.init_answers import (
    EXPORT_TYPES_BY_NAME,
    ExportSource,
    InitAnswers,
    Machine,
    OpcUaServer,
)
from agent.policy.schema import policy_json_schema
from kooperant.demo.machine_park import MachinePark
from tests.support.park_thread import machine_park_in_thread


@pytest.fixture(scope="module")
def park() -> Iterator[MachinePark]:
    with machine_park_in_thread() as running:
        yield running


def full_answers(folder: Path) -> InitAnswers:
    """Answers that use every block of the templates: OPC UA, exports, host and a password."""
    machines = (Machine("DMU 50", "dmu-50", "DMU 50"), Machine("Prasa", "prasa", "Prasa"))
    server = OpcUaServer("opc.tcp://127.0.0.1:4840", machines, browsed=True)
    exports = tuple(
        ExportSource(EXPORT_TYPES_BY_NAME[name], folder / "exports" / f"{name}.csv")
        for name in ("schedule", "stock", "warehouse")
    )
    return InitAnswers(
        member="acme",
        cluster="c1",
        broker_url="mqtt://127.0.0.1:1883",
        broker_username="acme-agent",
        broker_password="s3cret",
        servers=(server,),
        exports=exports,
        host_resource="serwer-1",
        output=folder,
    )


def schema_errors(schema_file: Path, yaml_file: Path) -> list[str]:
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    data = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
    return [
        f"{error.json_path}: {error.message}"
        for error in Draft202012Validator(schema).iter_errors(data)
    ]


def enable_rules(text: str) -> str:
    """Remove the '# ' of every example rule, as the header of policy.yaml describes it."""
    lines = text.splitlines()
    enabled = []
    in_rule = False
    for line in lines:
        if line.startswith("  # - resource:"):
            in_rule = True
        elif not line.startswith("  #   "):
            in_rule = False
        enabled.append("  " + line.removeprefix("  # ") if in_rule else line)
    return "\n".join(enabled).replace("share: []", "share:") + "\n"


def test_init_writes_both_schemas(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)

    config_schema = json.loads(written.config_schema.read_text(encoding="utf-8"))
    policy_schema = json.loads(written.policy_schema.read_text(encoding="utf-8"))
    assert written.config_schema == tmp_path / "agent-config.schema.json"
    assert written.policy_schema == tmp_path / "policy.schema.json"
    assert config_schema == agent_config_json_schema()
    assert policy_schema == policy_json_schema()


def test_init_files_name_their_schema(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)

    config_first = written.config.read_text(encoding="utf-8").splitlines()[0]
    policy_first = written.policy.read_text(encoding="utf-8").splitlines()[0]
    assert config_first == "# yaml-language-server: $schema=agent-config.schema.json"
    assert policy_first == "# yaml-language-server: $schema=policy.schema.json"


def test_init_config_valid_against_schema(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)

    assert schema_errors(written.config_schema, written.config) == []


def test_init_policy_valid_against_schema(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)

    assert schema_errors(written.policy_schema, written.policy) == []


def test_init_enabled_rules_valid_against_schema(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)
    written.policy.write_text(enable_rules(written.policy.read_text("utf-8")), "utf-8")

    policy = yaml.safe_load(written.policy.read_text(encoding="utf-8"))
    assert [rule["resource"] for rule in policy["share"]] == ["dmu-50", "prasa", "serwer-1"]
    assert schema_errors(written.policy_schema, written.policy) == []


def test_init_schema_rejects_a_typo(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)
    text = written.config.read_text(encoding="utf-8").replace("member: acme", "membr: acme")
    written.config.write_text(text, encoding="utf-8")

    errors = schema_errors(written.config_schema, written.config)

    assert any("'member' is a required property" in error for error in errors)


def test_init_comments_name_existing_examples(tmp_path: Path) -> None:
    written = write_files(full_answers(tmp_path), force=False)
    text = written.config.read_text("utf-8") + written.policy.read_text("utf-8")

    named = re.findall(r"(\S+\.example\.yaml)", text)
    paths = {Path(name) for name in named if "TYPE" not in name}
    assert "# on " in text
    assert {path.name for path in paths} >= {
        "agent.example.yaml",
        "policy.example.yaml",
        "opcua.example.yaml",
        "host.example.yaml",
        "stock.example.yaml",
        "warehouse.example.yaml",
    }
    for path in paths:
        assert path.is_absolute(), path
        assert path.is_file(), path


def test_init_existing_schema_blocks_write(tmp_path: Path) -> None:
    schema = tmp_path / "policy.schema.json"
    schema.write_text("{}", encoding="utf-8")

    with pytest.raises(TargetExistsError) as raised:
        write_files(full_answers(tmp_path), force=False)

    assert raised.value.path == schema
    assert schema.read_text("utf-8") == "{}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["policy.schema.json"]


def test_init_force_replaces_schema(tmp_path: Path) -> None:
    schema = tmp_path / "policy.schema.json"
    schema.write_text("{}", encoding="utf-8")

    write_files(full_answers(tmp_path), force=True)

    assert json.loads(schema.read_text("utf-8")) == policy_json_schema()
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")] == []


def test_init_enabled_rule_passes_check(
    tmp_path: Path, park: MachinePark, mosquitto_url: str
) -> None:
    arguments = ["--member", "acme", "--cluster", "c1", "--broker-url", mosquitto_url]
    runner = CliRunner()
    env = {"KOOPERANT_LANG": "en"}
    options = ["--opcua", park.endpoint, "--output", str(tmp_path), "--skip-check"]
    created = runner.invoke(app, ["init", "--non-interactive", *arguments, *options], env=env)
    assert created.exit_code == 0, created.output
    policy = tmp_path / "policy.yaml"
    policy.write_text(enable_rules(policy.read_text("utf-8")), "utf-8")

    result = runner.invoke(app, ["check", "--config", str(tmp_path / "agent.yaml")], env=env)

    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "agent.yaml")
    shared: dict[str, Any] = yaml.safe_load(policy.read_text("utf-8"))
    assert config.sharing_policy.resources == {rule["resource"] for rule in shared["share"]}
    assert schema_errors(tmp_path / "policy.schema.json", policy) == []
    assert schema_errors(tmp_path / "agent-config.schema.json", tmp_path / "agent.yaml") == []
