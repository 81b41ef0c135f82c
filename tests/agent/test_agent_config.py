"""Loading ``agent.yaml``: defaults, variables, and errors that name file, line and key."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path
from typing import Any

import pytest

import agent.config
from adapters.base import Adapter, AdapterSettings, Observation
from adapters.registry import load_adapter_class
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY = "share:\n  - resource: cnc-1\n    fields: [name]\n"


class ProbeSettings(AdapterSettings):
    url: str
    retries: int = 3


class ProbeAdapter(Adapter[ProbeSettings]):
    settings_model = ProbeSettings

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return []

    async def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def probe_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``probe`` next to the installed adapters, for this module only."""

    def lookup(name: str) -> type[Adapter[Any]]:
        return ProbeAdapter if name == "probe" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)


def write(folder: Path, text: str, *, policy: str = POLICY) -> Path:
    (folder / "policy.yaml").write_text(policy, encoding="utf-8")
    path = folder / "agent.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


MINIMAL = """
member: acme-metal
cluster: pomorskie-metal
broker:
  url: mqtt://127.0.0.1:1883
policy: policy.yaml
"""


def config_error(path: Path, variables: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, variables or {})
    return str(caught.value)


def test_minimal_config_uses_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), {})

    assert config.timezone == "Europe/Warsaw"
    assert config.horizon_days == 14
    assert config.publish_interval_seconds == 60
    assert config.client_id == "kooperant-agent-acme-metal"
    assert (config.broker.host, config.broker.port, config.broker.tls) == ("127.0.0.1", 1883, False)
    assert [(shift.start, shift.end) for shift in config.calendar.shifts] == [
        (time(6), time(14)),
        (time(14), time(22)),
    ]
    assert config.policy_path == tmp_path / "policy.yaml"
    assert config.sharing_policy.resources == {"cnc-1"}
    assert config.adapters == ()


def test_resource_tags_read(tmp_path: Path) -> None:
    text = MINIMAL + "resources:\n  cnc-1:\n    tags: [hala-a, nadwyzki]\n"

    config = load_config(write(tmp_path, text), {})

    assert config.resources["cnc-1"].tags == ("hala-a", "nadwyzki")


def test_empty_resource_tag_rejected(tmp_path: Path) -> None:
    text = MINIMAL + "resources:\n  cnc-1:\n    tags: [hala-a, '']\n"

    message = config_error(write(tmp_path, text))

    assert message == (
        f"{tmp_path / 'agent.yaml'}:8: resources.cnc-1.tags[1]: string should have at least "
        "1 character, got ''"
    )


def test_variables_and_defaults_are_expanded(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        member: ${MEMBER}
        cluster: ${CLUSTER:-pomorskie-metal}
        horizon_days: ${HORIZON:-7}
        broker:
          url: mqtts://${BROKER_HOST}
        policy: policy.yaml
        """,
    )

    config = load_config(path, {"MEMBER": "acme", "BROKER_HOST": "localhost"})

    assert config.member == "acme"
    assert config.cluster == "pomorskie-metal"
    assert config.horizon_days == 7
    assert (config.broker.host, config.broker.port, config.broker.tls) == ("localhost", 8883, True)


def test_adapter_settings_are_validated_by_its_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL + "adapters:\n  - {type: probe, name: hall-a, url: opc.tcp://127.0.0.1:4840}\n",
    )

    config = load_config(path, {})

    assert len(config.adapters) == 1
    entry = config.adapters[0]
    assert (entry.type_name, entry.name, entry.adapter_class) == ("probe", "hall-a", ProbeAdapter)
    assert entry.settings == ProbeSettings(url="opc.tcp://127.0.0.1:4840")


def test_password_is_hidden(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("  url:", "  password: s3cret-pw\n  url:"))

    config = load_config(path, {})

    assert config.broker.password is not None
    assert config.broker.password.get_secret_value() == "s3cret-pw"
    assert "s3cret-pw" not in repr(config)
    assert "s3cret-pw" not in str(config)


# Each case: the file, then the line, the key path and a part of the reason that must appear.
ERROR_CASES = [
    pytest.param(
        "member: acme\ncluster: c\nbroker: {url: [unclosed\npolicy: policy.yaml\n",
        4,
        "",
        "invalid YAML",
        id="malformed-yaml",
    ),
    pytest.param(
        MINIMAL + "brokr:\n  url: mqtt://127.0.0.1\n",
        6,
        "brokr",
        "unknown key",
        id="unknown-key",
    ),
    pytest.param(
        MINIMAL.replace("127.0.0.1:1883", "127.0.0.1:1883\n  keepalive: 30"),
        5,
        "broker.keepalive",
        "unknown key",
        id="unknown-nested-key",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - type: nosuch\n    name: a\n",
        7,
        "adapters[0].type",
        "unknown adapter type 'nosuch'; installed types: ",
        id="unknown-adapter-type",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - type: probe\n    name: a\n    retries: many\n",
        9,
        "adapters[0].retries",
        "valid integer",
        id="adapter-setting-invalid",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - type: probe\n    name: a\n",
        7,
        "adapters[0].url",
        "missing required key",
        id="adapter-setting-missing",
    ),
    pytest.param(
        MINIMAL
        + "adapters:\n  - {type: probe, name: a, url: x}\n  - {type: probe, name: a, url: y}\n",
        8,
        "adapters[1].name",
        "second adapter named 'a'",
        id="duplicate-adapter-name",
    ),
    pytest.param(
        MINIMAL.replace("mqtt://127.0.0.1:1883", "mqt://x"),
        4,
        "broker.url",
        "invalid URL 'mqt://x': expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        id="bad-url",
    ),
    pytest.param(
        MINIMAL + "timezone: Europe/Warszawa\n",
        6,
        "timezone",
        "unknown time zone 'Europe/Warszawa'",
        id="bad-timezone",
    ),
    pytest.param(
        MINIMAL.replace("mqtt://127.0.0.1:1883", "${KOOPERANT_TEST_UNSET}"),
        4,
        "broker.url",
        "variable KOOPERANT_TEST_UNSET is not set",
        id="missing-variable",
    ),
    pytest.param(
        MINIMAL + "horizon_days: 400\n",
        6,
        "horizon_days",
        "less than or equal to 366",
        id="horizon-too-long",
    ),
    pytest.param(
        MINIMAL + 'calendar:\n  shifts:\n    - {days: [mon], start: 14:00, end: "22:00"}\n',
        8,
        "calendar.shifts[0].start",
        'time must be quoted, e.g. "14:00"',
        id="unquoted-time",
    ),
    pytest.param(
        MINIMAL + "calendar:\n  shifts:\n    - {days: [mon, fri, sun, xyz], start: '06:00', "
        "end: '14:00'}\n",
        8,
        "calendar.shifts[0].days[3]",
        "input should be 'mon'",
        id="bad-weekday",
    ),
    pytest.param(
        MINIMAL + "resources:\n  bad/id: {name: x}\n",
        7,
        "resources.bad/id",
        "invalid resource id 'bad/id'",
        id="bad-resource-id",
    ),
    pytest.param(
        MINIMAL + "member: other\n",
        6,
        "member",
        "duplicate key",
        id="duplicate-key",
    ),
    pytest.param(
        MINIMAL.replace("cluster: pomorskie-metal\n", ""),
        1,
        "cluster",
        "missing required key",
        id="missing-key",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "reason"), ERROR_CASES)
def test_config_error_names_file_line_key(
    tmp_path: Path, text: str, line: int, key: str, reason: str
) -> None:
    path = write(tmp_path, text)

    message = config_error(path)

    expected_prefix = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
    assert expected_prefix in message
    assert reason in message


def test_unknown_adapter_type_lists_installed_types(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "adapters:\n  - {type: nosuch, name: a}\n")

    message = config_error(path)

    assert "host" in message.split("installed types: ")[1]


def test_all_problems_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "timezone: Mars/Base\nhorizon_days: 0\n")

    lines = config_error(path).splitlines()

    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:6: timezone: ")
    assert lines[1].startswith(f"{path}:7: horizon_days: ")


def test_url_with_credentials_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("mqtt://", "mqtt://user:pa55word@"))

    message = config_error(path)

    assert f"{path}:4: broker.url: the URL must not contain credentials" in message
    assert "pa55word" not in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param(
            "mqtt://user:secretpw@127.0.0.1:99999",
            "invalid port in URL 'mqtt://user:***@127.0.0.1:99999'",
            id="port-out-of-range",
        ),
        pytest.param(
            "mqtt://user:secret/pw@127.0.0.1",
            "invalid port in URL 'mqtt://user:***@127.0.0.1'",
            id="slash-in-password",
        ),
        pytest.param(
            "mqtt://user:secretpw@[::1",
            "invalid URL 'mqtt://user:***@[::1'",
            id="unclosed-ipv6",
        ),
        pytest.param(
            "mqtt://secretpw@127.0.0.1:0",
            "invalid port in URL 'mqtt://***@127.0.0.1:0'",
            id="token-as-user",
        ),
    ],
)
def test_invalid_url_masks_credentials(tmp_path: Path, url: str, reason: str) -> None:
    path = write(tmp_path, MINIMAL.replace("mqtt://127.0.0.1:1883", url))

    message = config_error(path)

    assert f"{path}:4: broker.url: {reason}" in message
    assert "secret" not in message


def test_broker_url_port_zero_rejected() -> None:
    with pytest.raises(ValueError) as raised:
        agent.config.parse_broker_url("mqtt://127.0.0.1:0")

    assert "invalid port in URL 'mqtt://127.0.0.1:0'" in str(raised.value)


def test_invalid_secret_value_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("  url:", "  password: [hunter2]\n  url:"))

    message = config_error(path)

    assert f"{path}:4: broker.password: " in message
    assert "hunter2" not in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    message = config_error(tmp_path / "absent.yaml")

    assert f"{tmp_path / 'absent.yaml'}: file not found" in message


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "")

    assert "expected a mapping" in config_error(path)


def test_policy_errors_name_the_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL, policy="share:\n  - resource: cnc-1\n    fields: [colour]\n")

    message = config_error(path)

    assert f"{tmp_path / 'policy.yaml'}:3: share[0].fields[0]: unknown offer field 'colour'" in (
        message
    )


def test_example_configs_load() -> None:
    example = REPO_ROOT / "config" / "agent.example.yaml"

    config = load_config(example, {"KOOPERANT_BROKER_URL": "mqtt://127.0.0.1:1883"})

    assert isinstance(config, AgentConfig)
    assert config.member == "acme-metal"
    assert [entry.type_name for entry in config.adapters] == ["schedule_csv", "host"]
    assert config.sharing_policy.resources == {"cnc-5ax-01", "server-01"}
    assert config.resources["cnc-5ax-01"].tags == ("hala-a",)
    assert len(config.working_calendar().shifts) == 3


def test_example_config_defaults_without_variables() -> None:
    config = load_config(REPO_ROOT / "config" / "agent.example.yaml", {})

    assert config.broker.url == "mqtt://127.0.0.1:1883"
