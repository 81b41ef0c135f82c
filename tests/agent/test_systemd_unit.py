"""The systemd unit built from an agent config: options, quoting and ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent import systemd_unit
from agent.service_config import load_service_config
from agent.systemd_unit import (
    MARKER,
    is_kooperant_unit,
    quote_argument,
    quote_command_argument,
    render_unit,
    unit_settings_for,
)
from tests.agent.service_samples import write_config

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def unit_lines(text: str) -> dict[str, list[str]]:
    """Return each key of the unit with all its values, in file order."""
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            lines.setdefault(key, []).append(value)
    return lines


def build_unit(
    config_path: Path,
    *,
    user: str = "kooperant",
    environment_file: Path | None = None,
    python: Path | None = None,
) -> str:
    config = load_service_config(config_path)
    settings = unit_settings_for(
        config, user=user, environment_file=environment_file, python=python
    )
    return render_unit(settings)


def verify(unit_path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/opt/kooperant/agent.yaml", "/opt/kooperant/agent.yaml"),
        ("/srv/hala 2/agent.yaml", '"/srv/hala 2/agent.yaml"'),
        ("/srv/50%/agent.yaml", "/srv/50%%/agent.yaml"),
        ('/srv/a"b', '"/srv/a\\"b"'),
        ("/srv/a\\b", '"/srv/a\\\\b"'),
        ("/srv/it's", '"/srv/it\'s"'),
        ("", '""'),
    ],
)
def test_quote_argument_cases(text: str, expected: str) -> None:
    assert quote_argument(text) == expected


def test_quote_command_argument_doubles_dollar() -> None:
    assert quote_command_argument("/srv/$HOME/agent.yaml") == "/srv/$$HOME/agent.yaml"


def test_unit_default_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test's folder is below /tmp, which would switch PrivateTmp off.
    monkeypatch.setattr(systemd_unit, "TEMP_FOLDERS", (Path("/nonexistent-temp"),))
    config = write_config(tmp_path / "site")

    text = build_unit(config)
    lines = unit_lines(text)

    assert is_kooperant_unit(text)
    assert text.startswith(MARKER + "\n")
    assert lines["User"] == ["kooperant"]
    python = str(Path(sys.executable).absolute())
    assert lines["ExecStart"] == [f"{python} -m kooperant agent run --config {config}"]
    assert lines["Restart"] == ["on-failure"]
    assert lines["RestartSec"] == ["10"]
    assert lines["ReadWritePaths"] == [str(config.parent)]
    assert lines["ProtectSystem"] == ["strict"]
    assert lines["ProtectHome"] == ["yes"]
    assert lines["NoNewPrivileges"] == ["yes"]
    assert lines["PrivateTmp"] == ["yes"]
    assert lines["PrivateDevices"] == ["yes"]
    assert lines["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert lines["CapabilityBoundingSet"] == [""]
    assert lines["WantedBy"] == ["multi-user.target"]
    assert lines["Wants"] == ["network-online.target"]
    assert "network-online.target" in lines["After"][0]
    assert "EnvironmentFile" not in lines


def test_unit_audit_log_elsewhere_is_writable(tmp_path: Path) -> None:
    audit_folder = tmp_path / "var lib"
    config = write_config(tmp_path / "etc", extra=f"audit_log: {audit_folder}/audit.db\n")

    lines = unit_lines(build_unit(config))

    assert lines["ReadWritePaths"] == [f'"{audit_folder}"']


def test_unit_paths_with_spaces_quoted(tmp_path: Path) -> None:
    config = write_config(tmp_path / "hala 2 %")

    lines = unit_lines(build_unit(config))

    folder = str(config.parent).replace("%", "%%")
    python = str(Path(sys.executable).absolute())
    expected = f'{python} -m kooperant agent run --config "{folder}/agent.yaml"'
    assert lines["ExecStart"] == [expected]
    assert lines["ReadWritePaths"] == [f'"{folder}"']


def test_unit_user_and_environment_file(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    environment = tmp_path / "agent env"

    lines = unit_lines(build_unit(config, user="hala2", environment_file=environment))

    assert lines["User"] == ["hala2"]
    assert lines["EnvironmentFile"] == [str(environment)]


def test_unit_pki_dir_writable_when_present(tmp_path: Path) -> None:
    adapters = "  - type: opcua\n    name: hala\n    url: opc.tcp://127.0.0.1:4840\n"
    config = write_config(tmp_path, adapters=adapters + "    pki_dir: certs\n")

    lines = unit_lines(build_unit(config))

    assert lines["ReadWritePaths"] == [f"{tmp_path} -{tmp_path}/certs"]


def test_unit_home_paths_read_only(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    text = build_unit(config, python=Path("/home/ola/venv/bin/python"))

    assert unit_lines(text)["ProtectHome"] == ["read-only"]


def test_unit_temp_paths_keep_tmp(tmp_path: Path) -> None:
    # PrivateTmp=yes would give the service an empty /tmp without its config.
    config = write_config(tmp_path)

    lines = unit_lines(build_unit(config))

    assert str(config).startswith("/tmp/")
    assert lines["PrivateTmp"] == ["no"]


def test_unit_secret_file_in_home_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(systemd_unit, "HOME_FOLDERS", (tmp_path / "home",))
    secret = tmp_path / "home" / "ola" / "broker-password"
    secret.parent.mkdir(parents=True)
    secret.write_text("pw\n", encoding="utf-8")
    config = write_config(tmp_path / "etc")
    login = f"  username: acme\n  password: ${{file:{secret}}}\npolicy:"
    text = config.read_text(encoding="utf-8").replace("policy:", login, 1)
    config.write_text(text, encoding="utf-8")

    lines = unit_lines(build_unit(config))

    assert lines["ProtectHome"] == ["read-only"]


def test_unit_low_status_port_capability(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="status: {port: 80}\n")

    lines = unit_lines(build_unit(config))

    assert lines["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert lines["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("folder", ["plain", "hala 2", 'zakład "A" 50%'])
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, folder: str) -> None:
    adapters = "  - type: opcua\n    name: hala\n    url: opc.tcp://127.0.0.1:4840\n"
    config = write_config(tmp_path / folder, adapters=adapters)
    (config.parent / "pki").mkdir()
    unit_path = tmp_path / "kooperant-agent.service"
    unit_path.write_text(
        build_unit(config, environment_file=config.parent / "agent.env"), encoding="utf-8"
    )

    result = verify(unit_path)

    assert result.returncode == 0, result.stderr
    assert "kooperant-agent.service" not in result.stderr, result.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_verify_reports_unquoted_space(tmp_path: Path) -> None:
    """The check above can fail: the same unit without quotes gets a warning."""
    config = write_config(tmp_path / "hala 2")
    text = build_unit(config).replace(f'"{config.parent}"', str(config.parent))
    unit_path = tmp_path / "kooperant-agent.service"
    unit_path.write_text(text, encoding="utf-8")

    result = verify(unit_path)

    assert "path is not absolute, ignoring: 2" in result.stderr
