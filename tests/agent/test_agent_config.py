"""Loading ``agent.yaml``: defaults, variables, and errors that name file, line and key."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import agent.config
from adapters.base import Adapter, AdapterSettings, Observation
from adapters.registry import available_adapters, load_adapter_class
from agent.cli import EXIT_CONFIG_ERROR, app
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError
from kooperant.i18n import Language

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
    assert (config.broker.host, config.broker.port, config.broker.uses_tls) == (
        "127.0.0.1",
        1883,
        False,
    )
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
    assert (config.broker.host, config.broker.port, config.broker.uses_tls) == (
        "localhost",
        8883,
        True,
    )


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
    path = write(
        tmp_path, MINIMAL.replace("  url:", "  username: acme\n  password: s3cret-pw\n  url:")
    )

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


# Each case: the file, the line and key path, the English and the Polish reason.
OWN_CHECK_CASES = [
    pytest.param(
        MINIMAL + 'calendar:\n  shifts:\n    - {days: [mon], start: 14:00, end: "22:00"}\n',
        "8: calendar.shifts[0].start",
        'time must be quoted, e.g. "14:00": YAML read it as the number 840',
        'godzinę ujmij w cudzysłów, np. "14:00": YAML odczytał ją jako liczbę 840',
        id="time-unquoted",
    ),
    pytest.param(
        MINIMAL + "calendar:\n  shifts:\n    - {days: [mon], start: '25:00', end: '06:00'}\n",
        "8: calendar.shifts[0].start",
        'invalid time \'25:00\': expected "HH:MM" from "00:00" to "23:59"',
        'nieprawidłowa godzina \'25:00\': oczekiwano "GG:MM" od "00:00" do "23:59"',
        id="time-invalid",
    ),
    pytest.param(
        MINIMAL + "calendar:\n  shifts:\n    - {days: [mon], start: '06:00', end: '06:00'}\n",
        "8: calendar.shifts[0]",
        "shift starts and ends at 06:00; give a shorter or split shift",
        "zmiana zaczyna się i kończy o 06:00; podaj krótszą zmianę albo podziel ją na dwie",
        id="shift-empty",
    ),
    pytest.param(
        MINIMAL + "timezone: Europe/Warszawa\n",
        "6: timezone",
        "unknown time zone 'Europe/Warszawa': use an IANA name such as 'Europe/Warsaw'",
        "nieznana strefa czasowa 'Europe/Warszawa': podaj nazwę IANA, np. 'Europe/Warsaw'",
        id="timezone-unknown",
    ),
    pytest.param(
        MINIMAL.replace(
            "1883\n", "1883\n  reconnect_min_seconds: 10\n  reconnect_max_seconds: 5\n"
        ),
        "3: broker",
        "reconnect_max_seconds must not be below reconnect_min_seconds",
        "reconnect_max_seconds nie może być mniejsze niż reconnect_min_seconds",
        id="reconnect-order",
    ),
    pytest.param(
        MINIMAL.replace("mqtt://127.0.0.1:1883", "mqt://x"),
        "4: broker.url",
        "invalid URL 'mqt://x': expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        "nieprawidłowy adres 'mqt://x': oczekiwano mqtt://HOST[:PORT] lub mqtts://HOST[:PORT]",
        id="url-scheme",
    ),
    pytest.param(
        MINIMAL.replace("127.0.0.1:1883", "127.0.0.1:99999"),
        "4: broker.url",
        "invalid port in URL 'mqtt://127.0.0.1:99999': use a number from 1 to 65535; "
        "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        "nieprawidłowy port w adresie 'mqtt://127.0.0.1:99999': podaj liczbę od 1 do 65535; "
        "oczekiwano mqtt://HOST[:PORT] lub mqtts://HOST[:PORT]",
        id="url-port",
    ),
    pytest.param(
        MINIMAL.replace("127.0.0.1:1883", "[::1"),
        "4: broker.url",
        "invalid URL 'mqtt://[::1': check the host, e.g. the brackets of an IPv6 address; "
        "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        "nieprawidłowy adres 'mqtt://[::1': sprawdź nazwę hosta, np. nawiasy adresu IPv6; "
        "oczekiwano mqtt://HOST[:PORT] lub mqtts://HOST[:PORT]",
        id="url-unparsable",
    ),
    pytest.param(
        MINIMAL.replace("mqtt://", "mqtt://user:pa55word@"),
        "4: broker.url",
        "the URL must not contain credentials; set broker.username and password",
        "adres nie może zawierać danych logowania; podaj je w broker.username i broker.password",
        id="url-credentials",
    ),
    pytest.param(
        MINIMAL.replace("1883", "1883/agents"),
        "4: broker.url",
        "invalid URL 'mqtt://127.0.0.1:1883/agents': remove the path or query; "
        "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        "nieprawidłowy adres 'mqtt://127.0.0.1:1883/agents': usuń ścieżkę i parametry zapytania; "
        "oczekiwano mqtt://HOST[:PORT] lub mqtts://HOST[:PORT]",
        id="url-path",
    ),
    pytest.param(
        "- member: acme-metal\n",
        "1",
        "expected a mapping with keys such as member:, cluster:, broker:",
        "oczekiwano słownika z kluczami takimi jak member:, cluster:, broker:",
        id="config-not-mapping",
    ),
    pytest.param(
        MINIMAL + "adapters: probe\n",
        "6: adapters",
        "expected a list of adapter sections",
        "oczekiwano listy sekcji adapterów",
        id="adapters-not-list",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - probe\n",
        "7: adapters[0]",
        "expected a mapping with at least 'type:' and 'name:'",
        "oczekiwano słownika z co najmniej 'type:' i 'name:'",
        id="adapter-not-mapping",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - {name: a, url: x}\n",
        "7: adapters[0].type",
        "missing or not a string; name an adapter type",
        "brak wartości albo wartość nie jest tekstem; podaj typ adaptera",
        id="adapter-type-missing",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - {type: probe, url: x}\n",
        "7: adapters[0].name",
        "missing or not a string; name this adapter",
        "brak wartości albo wartość nie jest tekstem; nadaj adapterowi nazwę",
        id="adapter-name-missing",
    ),
    pytest.param(
        MINIMAL
        + "adapters:\n  - {type: probe, name: a, url: x}\n  - {type: probe, name: a, url: y}\n",
        "8: adapters[1].name",
        "second adapter named 'a'; give each adapter a unique name",
        "drugi adapter o nazwie 'a'; nadaj każdemu adapterowi inną nazwę",
        id="adapter-name-repeated",
    ),
    pytest.param(
        MINIMAL + "adapters:\n  - {type: nosuch, name: a}\n",
        "7: adapters[0].type",
        f"unknown adapter type 'nosuch'; installed types: {', '.join(available_adapters())}",
        f"nieznany typ adaptera 'nosuch'; zainstalowane typy: {', '.join(available_adapters())}",
        id="adapter-type-unknown",
    ),
]


@pytest.mark.parametrize(("text", "where", "english", "polish"), OWN_CHECK_CASES)
@pytest.mark.parametrize("language", ["en", "pl"])
def test_config_check_worded(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    language: Language,
    text: str,
    where: str,
    english: str,
    polish: str,
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)
    path = write(tmp_path, text)

    message = config_error(path)

    assert message == f"{path}:{where}: {english if language == 'en' else polish}"


def run_with_default_language(monkeypatch: pytest.MonkeyPatch, path: Path) -> tuple[int, str]:
    """Run ``kooperant agent run`` where neither KOOPERANT_LANG nor the locale names a language."""
    for variable in ("KOOPERANT_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")

    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    return result.exit_code, result.stderr


def test_agent_cli_config_polish_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        MINIMAL + "brokr: {url: mqtt://127.0.0.1}\ncalendar:\n  shifts:\n"
        "    - {days: [pon], start: '06:00', end: '14:00'}\n",
    )

    exit_code, stderr = run_with_default_language(monkeypatch, path)

    assert exit_code == EXIT_CONFIG_ERROR
    assert stderr == (
        "Błędna konfiguracja (plik, wiersz, klucz: problem):\n"
        f"{path}:6: brokr: nieznany klucz; usuń go albo popraw pisownię\n"
        f"{path}:9: calendar.shifts[0].days[0]: dozwolone wartości: 'mon', 'tue', 'wed', "
        "'thu', 'fri', 'sat', 'sun' (podano 'pon')\n"
        "Popraw wskazane miejsca i uruchom agenta ponownie.\n"
    )


def test_agent_cli_policy_polish_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = "share:\n  - resource: cnc-1\n    fields: [name]\n    round: week\n    colour: red\n"
    path = write(tmp_path, MINIMAL, policy=policy)

    exit_code, stderr = run_with_default_language(monkeypatch, path)

    assert exit_code == EXIT_CONFIG_ERROR
    assert stderr == (
        "Błędna konfiguracja (plik, wiersz, klucz: problem):\n"
        f"{tmp_path / 'policy.yaml'}:4: share[0].round: dozwolone wartości: '15min', 'hour', "
        "'half_day', 'shift', 'day' (podano 'week')\n"
        f"{tmp_path / 'policy.yaml'}:5: share[0].colour: nieznany klucz; usuń go albo popraw "
        "pisownię\n"
        "Popraw wskazane miejsca i uruchom agenta ponownie.\n"
    )


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
    assert [entry.type_name for entry in config.adapters] == ["schedule", "host"]
    assert config.sharing_policy.resources == {"cnc-5ax-01", "server-01"}
    assert config.resources["cnc-5ax-01"].tags == ("hala-a",)
    assert len(config.working_calendar().shifts) == 3


def test_example_config_defaults_without_variables() -> None:
    config = load_config(REPO_ROOT / "config" / "agent.example.yaml", {})

    assert config.broker.url == "mqtt://127.0.0.1:1883"
