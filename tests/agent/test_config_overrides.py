"""``KOOPERANT_AGENT__*`` variables that override values of agent.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import load_config
from agent.errors import ConfigError

SECRET = "tajne-Haslo-7"
CONFIG = """\
member: acme
cluster: pomorskie
broker:
  url: mqtt://127.0.0.1:1883
  username: acme
policy: policy.yaml
resources:
  cnc-1:
    name: Frezarka
adapters:
  - type: host
    name: main-host
    resource: host-1
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def error_of(path: Path, variables: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, variables)
    return str(caught.value)


def test_override_top_level_and_nested(config_path: Path) -> None:
    variables = {
        "KOOPERANT_AGENT__MEMBER": "beta",
        "KOOPERANT_AGENT__BROKER__URL": "mqtt://broker:1884",
        "KOOPERANT_AGENT__STATUS__PORT": "9000",
        "KOOPERANT_AGENT__STATUS__ENABLED": "false",
    }

    config = load_config(config_path, variables)

    assert config.member == "beta"
    assert config.broker.url == "mqtt://broker:1884"
    assert config.status.port == 9000
    assert config.status.enabled is False


def test_override_names_sorted(config_path: Path) -> None:
    variables = {"KOOPERANT_AGENT__STATUS__PORT": "9000", "KOOPERANT_AGENT__MEMBER": "beta"}

    config = load_config(config_path, variables)

    assert config.overrides == ("KOOPERANT_AGENT__MEMBER", "KOOPERANT_AGENT__STATUS__PORT")


def test_override_case_insensitive(config_path: Path) -> None:
    config = load_config(config_path, {"kooperant_agent__Broker__Client_Id": "agent-7"})

    assert config.broker.client_id == "agent-7"


def test_override_keeps_text_fields_as_text(config_path: Path) -> None:
    config = load_config(config_path, {"KOOPERANT_AGENT__BROKER__PASSWORD": "123456"})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == "123456"


def test_override_password_file(config_path: Path) -> None:
    secret = config_path.parent / "broker-password"
    secret.write_text(SECRET + "\n", encoding="utf-8")

    config = load_config(config_path, {"KOOPERANT_AGENT__BROKER__PASSWORD_FILE": str(secret)})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == SECRET


def test_override_real_file_key_not_read(config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8").replace("mqtt://", "mqtts://")
    config_path.write_text(text, encoding="utf-8")
    (config_path.parent / "ca.pem").write_text("not read here", encoding="utf-8")

    config = load_config(config_path, {"KOOPERANT_AGENT__BROKER__TLS__CA_FILE": "ca.pem"})

    assert config.broker.tls is not None
    assert config.broker.tls.ca_file == Path("ca.pem")


def test_override_adds_missing_section(config_path: Path) -> None:
    config = load_config(config_path, {"KOOPERANT_AGENT__OUTBOX__MAX_AGE_HOURS": "2.5"})

    assert config.outbox.max_age_hours == 2.5


def test_override_adapter_by_index_and_name(config_path: Path) -> None:
    variables = {
        "KOOPERANT_AGENT__ADAPTERS__0__RESOURCE": "host-2",
        "KOOPERANT_AGENT__ADAPTERS__MAIN_HOST__SAMPLE_INTERVAL_SECONDS": "7",
    }

    config = load_config(config_path, variables)

    settings = config.adapters[0].settings.model_dump()
    assert settings["resource"] == "host-2"
    assert settings["sample_interval_seconds"] == 7


def test_override_resource_by_id(config_path: Path) -> None:
    config = load_config(config_path, {"KOOPERANT_AGENT__RESOURCES__CNC_1__NAME": "Tokarka"})

    assert config.resources["cnc-1"].name == "Tokarka"


def test_override_policy_path(config_path: Path) -> None:
    other = config_path.parent / "other-policy.yaml"
    other.write_text("share:\n  - resource: cnc-1\n    fields: [name]\n", encoding="utf-8")

    config = load_config(config_path, {"KOOPERANT_AGENT__POLICY": str(other)})

    assert config.policy_path == other
    assert len(config.sharing_policy.rules) == 1


def test_override_unknown_key(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER__ULR": "mqtt://x"})

    assert message == (
        f"{config_path}: KOOPERANT_AGENT__BROKER__ULR: unknown key broker.ulr; known here: "
        "client_id, connect_timeout_seconds, password, protocol, reconnect_max_seconds, "
        "reconnect_min_seconds, session_expiry_seconds, tls, url, username. Correct the "
        "variable name or remove the variable"
    )


def test_override_unknown_top_level_key(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__MEMBERS": "x"})

    assert "KOOPERANT_AGENT__MEMBERS: unknown key members;" in message


def test_override_unknown_adapter_name(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__ADAPTERS__PLC__URL": "opc.tcp://x"})

    assert "KOOPERANT_AGENT__ADAPTERS__PLC__URL: unknown key adapters.plc; known here: " in message
    assert "main-host" in message


def test_override_unknown_adapter_key(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__ADAPTERS__0__URL": "x"})

    assert "KOOPERANT_AGENT__ADAPTERS__0__URL: unknown key adapters[0].url;" in message


def test_override_adapter_index_out_of_range(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__ADAPTERS__1__RESOURCE": "x"})

    assert message == (
        f"{config_path}: KOOPERANT_AGENT__ADAPTERS__1__RESOURCE: adapters has 1 item, so "
        "there is no item 1; items are counted from 0"
    )


@pytest.mark.parametrize(
    ("adapters", "expected"),
    [
        (1, "adapters ma 1 element,"),
        (2, "adapters ma 2 elementy,"),
        (5, "adapters ma 5 elementów,"),
    ],
)
def test_override_index_out_of_range_polish(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, adapters: int, expected: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")
    extra = "".join(
        f"  - type: host\n    name: host-{number}\n    resource: host-{number}\n"
        for number in range(2, adapters + 1)
    )
    config_path.write_text(CONFIG + extra, encoding="utf-8")

    message = error_of(config_path, {"KOOPERANT_AGENT__ADAPTERS__7__PATH": "x"})

    assert expected in message


def test_override_whole_section_rejected(config_path: Path) -> None:
    variables = {
        "KOOPERANT_AGENT__BROKER": "[1,2",
        "KOOPERANT_AGENT__BROKER__URL": "mqtt://127.0.0.1:18883",
    }

    message = error_of(config_path, variables)

    assert "KOOPERANT_AGENT__BROKER: broker is a section, so a variable cannot set it" in message
    assert "KOOPERANT_AGENT__BROKER__URL:" not in message


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("KOOPERANT_AGENT__STATUS", "status"),
        ("KOOPERANT_AGENT__ADAPTERS", "adapters"),
        ("KOOPERANT_AGENT__ADAPTERS__0", "adapters[0]"),
        ("KOOPERANT_AGENT__RESOURCES__CNC_1", "resources.cnc-1"),
    ],
)
def test_override_section_values_rejected(config_path: Path, variable: str, key: str) -> None:
    message = error_of(config_path, {variable: "{}"})

    assert f"{variable}: {key} is a section," in message


def test_override_empty_username_rejected(config_path: Path) -> None:
    text = CONFIG.replace("  username: acme\n", "  username: acme\n  password: pw\n")
    config_path.write_text(text, encoding="utf-8")

    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER__USERNAME": ""})

    assert "KOOPERANT_AGENT__BROKER__USERNAME: broker.username: " in message


def test_empty_username_in_file_rejected(config_path: Path) -> None:
    text = CONFIG.replace("  username: acme\n", "  username: ''\n  password: pw\n")
    config_path.write_text(text, encoding="utf-8")

    message = error_of(config_path, {})

    assert "broker.username: " in message


def test_blank_username_override_rejected(config_path: Path) -> None:
    text = CONFIG.replace("  username: acme\n", "  username: acme\n  password: pw\n")
    config_path.write_text(text, encoding="utf-8")

    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER__USERNAME": "  "})

    assert "KOOPERANT_AGENT__BROKER__USERNAME: broker.username: " in message
    assert "only blank characters" in message


def test_override_unknown_resource(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__RESOURCES__LASER__NAME": "x"})

    assert "unknown key resources.laser; known here: cnc-1." in message


def test_override_below_a_value(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__MEMBER__NAME": "x"})

    assert "KOOPERANT_AGENT__MEMBER__NAME: member holds a single value, not keys;" in message


def test_override_empty_part(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER____URL": "x"})

    assert "KOOPERANT_AGENT__BROKER____URL: the variable name has an empty key" in message


def test_override_bad_value_names_variable(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__STATUS__PORT": "99999"})

    assert message == (
        f"{config_path}: KOOPERANT_AGENT__STATUS__PORT: status.port: input should be less "
        "than or equal to 65535, got 99999"
    )


def test_override_bad_nested_value_names_variable(config_path: Path) -> None:
    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER__URL": "http://broker"})

    assert message.startswith(f"{config_path}: KOOPERANT_AGENT__BROKER__URL: broker.url: ")


def test_file_error_keeps_line_next_to_override(config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8").replace("cluster: pomorskie", "cluster: a/b")
    config_path.write_text(text, encoding="utf-8")

    message = error_of(config_path, {"KOOPERANT_AGENT__MEMBER": "beta"})

    assert message.startswith(f"{config_path}:2: cluster: ")


def test_override_password_file_missing(config_path: Path) -> None:
    missing = config_path.parent / "missing"

    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER__PASSWORD_FILE": "missing"})

    assert message == (
        f"{config_path}: KOOPERANT_AGENT__BROKER__PASSWORD_FILE: secret file {missing} not "
        "found; create it or correct the path"
    )


def test_override_secret_absent_from_errors(config_path: Path) -> None:
    text = config_path.read_text(encoding="utf-8").replace("  username: acme\n", "")
    config_path.write_text(text, encoding="utf-8")

    message = error_of(config_path, {"KOOPERANT_AGENT__BROKER__PASSWORD": SECRET})

    assert "KOOPERANT_AGENT__BROKER__PASSWORD: broker.password:" in message
    assert SECRET not in message


def test_check_lists_override_names(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_AGENT__BROKER__PASSWORD", SECRET)
    monkeypatch.setenv("KOOPERANT_AGENT__STATUS__ENABLED", "false")

    result = CliRunner().invoke(app, ["check", "--config", str(config_path), "--wait", "0"])

    assert result.stdout.splitlines()[0] == (
        "Values set by environment variables: KOOPERANT_AGENT__BROKER__PASSWORD, "
        "KOOPERANT_AGENT__STATUS__ENABLED."
    )
    assert SECRET not in result.output


def test_check_json_lists_override_names(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOOPERANT_AGENT__STATUS__ENABLED", "false")

    result = CliRunner().invoke(
        app, ["check", "--config", str(config_path), "--wait", "0", "--json"]
    )

    assert json.loads(result.stdout)["overrides"] == ["KOOPERANT_AGENT__STATUS__ENABLED"]


def test_check_json_error_names_variable(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOOPERANT_AGENT__STATUS__PORT", "0")

    result = CliRunner().invoke(
        app, ["check", "--config", str(config_path), "--wait", "0", "--json"]
    )

    errors = json.loads(result.stdout)["errors"]
    assert errors[0]["variable"] == "KOOPERANT_AGENT__STATUS__PORT"
    assert errors[0]["line"] is None


def test_preview_lists_override_names(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_AGENT__BROKER__PASSWORD", SECRET)

    result = CliRunner().invoke(app, ["preview", "--config", str(config_path), "--wait", "0"])

    assert "Values set by environment variables: KOOPERANT_AGENT__BROKER__PASSWORD." in (
        result.stderr
    )
    assert SECRET not in result.output
