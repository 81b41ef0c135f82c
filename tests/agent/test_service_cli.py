"""``kooperant agent install-service`` and ``uninstall-service`` on Linux, with a fake host.

``FakeHost`` records ``useradd`` and ``systemctl`` instead of running them, and units go into a
temporary ``--unit-dir``, so no real user or unit is created on the test machine.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent import service_cli
from agent.cli import app
from agent.service_access import UserIds
from agent.systemd_unit import MARKER
from tests.agent.service_samples import FakeHost, write_config

UNIT = "kooperant-agent.service"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    monkeypatch.setattr(service_cli, "system_host", fake)
    monkeypatch.setattr(service_cli, "is_windows", lambda: False)
    return fake


def install(config: Path, unit_dir: Path, *options: str, language: str = "en") -> Result:
    arguments = ["install-service", "--config", str(config), "--unit-dir", str(unit_dir)]
    return CliRunner().invoke(app, [*arguments, *options], env={"KOOPERANT_LANG": language})


def uninstall(unit_dir: Path, *options: str, language: str = "en") -> Result:
    arguments = ["uninstall-service", "--unit-dir", str(unit_dir), *options]
    return CliRunner().invoke(app, arguments, env={"KOOPERANT_LANG": language})


def test_install_creates_user_and_starts(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"

    result = install(config, units)

    assert result.exit_code == 0, result.output
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    assert host.commands == [
        [*useradd, "kooperant"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", UNIT],
    ]
    text = (units / UNIT).read_text(encoding="utf-8")
    assert text.startswith(MARKER)
    assert f"--config {config}" in text
    assert (units / UNIT).stat().st_mode & 0o777 == 0o644
    assert "Created the system user kooperant" in result.stdout
    assert "journalctl -u kooperant-agent" in result.stdout


def test_install_existing_user_no_start(tmp_path: Path, host: FakeHost) -> None:
    host.users["hala2"] = UserIds("hala2", os.getuid(), frozenset({os.getgid()}), os.getgid())
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"

    result = install(config, units, "--user", "hala2", "--name", "agent-hala2", "--no-start")

    assert result.exit_code == 0, result.output
    assert host.commands == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "agent-hala2.service"],
    ]
    assert "User=hala2\n" in (units / "agent-hala2.service").read_text(encoding="utf-8")
    assert "sudo systemctl start agent-hala2.service" in result.stdout


def test_install_print_changes_nothing(tmp_path: Path, host: FakeHost) -> None:
    host.root = False
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"

    result = install(config, units, "--print")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(MARKER)
    assert "ExecStart=" in result.stdout
    assert host.commands == []
    assert not units.exists()


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Installing or removing a service needs root"), ("pl", "wymagają roota")],
)
def test_install_non_root_rejected(
    tmp_path: Path, host: FakeHost, language: str, expected: str
) -> None:
    host.root = False
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"

    result = install(config, units, "--name", "hala 2".replace(" ", "-"), language=language)

    assert result.exit_code == 1
    assert expected in result.stderr
    assert f"sudo {os.path.abspath(sys.executable)} -m kooperant agent install-service" in (
        result.stderr
    )
    assert f"--config {config}" in result.stderr
    assert "--name hala-2" in result.stderr
    assert host.commands == []
    assert not units.exists()


def test_install_invalid_config_exit_2(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc", broker_url="mqt://x")
    units = tmp_path / "units"

    result = install(config, units)

    assert result.exit_code == 2
    assert f"{config}:4: broker.url: invalid URL 'mqt://x'" in result.stderr
    assert f"kooperant agent check --offline --config {config}" in result.stderr
    assert host.commands == []
    assert not units.exists()


def test_install_foreign_unit_kept(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"
    units.mkdir()
    (units / UNIT).write_text("[Service]\nExecStart=/usr/bin/true\n", encoding="utf-8")

    result = install(config, units)

    assert result.exit_code == 1
    assert f"The unit {units / UNIT} was not written by kooperant" in result.stderr
    assert "--force" in result.stderr
    assert (units / UNIT).read_text(encoding="utf-8") == "[Service]\nExecStart=/usr/bin/true\n"
    assert host.commands == []


def test_install_force_replaces_foreign(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"
    units.mkdir()
    (units / UNIT).write_text("[Service]\nExecStart=/usr/bin/true\n", encoding="utf-8")

    result = install(config, units, "--force")

    assert result.exit_code == 0, result.output
    assert (units / UNIT).read_text(encoding="utf-8").startswith(MARKER)


def test_install_replaces_own_unit(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"
    install(config, units, "--user", "first")

    result = install(config, units, "--user", "second")

    assert result.exit_code == 0, result.output
    assert "User=second\n" in (units / UNIT).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--name", "kooperant agent", "Invalid service name 'kooperant agent' (--name)"),
        ("--name", "a/b", "Invalid service name 'a/b' (--name)"),
        ("--user", "Root", "Invalid user name 'Root' (--user)"),
        ("--user", "x" * 33, "Invalid user name"),
    ],
)
def test_install_invalid_option_rejected(
    tmp_path: Path, host: FakeHost, option: str, value: str, expected: str
) -> None:
    config = write_config(tmp_path / "etc")

    result = install(config, tmp_path / "units", option, value)

    assert result.exit_code == 1
    assert expected in result.stderr
    assert host.commands == []


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may enter, unlike pytest's tmp_path below a 0700 folder."""
    folder = Path(tempfile.mkdtemp(prefix="kooperant-service-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_install_user_without_access_rejected(open_folder: Path, host: FakeHost) -> None:
    if os.getuid() != 0:
        pytest.skip("the files must belong to another user than the service user")
    host.new_user_uid = 54_321
    config = write_config(open_folder / "etc")
    config.parent.chmod(0o700)
    units = open_folder / "units"

    result = install(config, units)

    assert result.exit_code == 1
    assert "Nothing was installed, because the service user kooperant" in result.stderr
    assert f"cannot write {config.parent} (denied by the mode of {config.parent})" in (
        result.stderr
    )
    assert f"cannot read {config} (denied by the mode of {config.parent})" in result.stderr
    assert "sudo chown -R kooperant: FOLDER" in result.stderr
    assert not (units / UNIT).exists()
    assert host.commands == [
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "kooperant"]
    ]


def test_install_environment_file_fills_variables(
    tmp_path: Path, host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITE_BROKER_URL", raising=False)
    config = write_config(tmp_path / "etc", broker_url="${SITE_BROKER_URL}")
    environment = tmp_path / "etc" / "agent.env"
    environment.write_text(
        "# broker of the cluster\nSITE_BROKER_URL='mqtt://127.0.0.1:1'\n", encoding="utf-8"
    )
    units = tmp_path / "units"

    without_file = install(config, units)
    result = install(config, units, "--environment-file", str(environment))

    assert without_file.exit_code == 2
    assert "SITE_BROKER_URL" in without_file.stderr
    assert result.exit_code == 0, result.output
    assert f"EnvironmentFile={environment}\n" in (units / UNIT).read_text(encoding="utf-8")


def test_install_bad_environment_file_line(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    environment = tmp_path / "agent.env"
    environment.write_text("A=1\nexport B=2\n", encoding="utf-8")

    result = install(config, tmp_path / "units", "--environment-file", str(environment))

    assert result.exit_code == 2
    assert f"{environment}:2: expected NAME=VALUE" in result.stderr


def test_install_systemctl_failure_reported(tmp_path: Path, host: FakeHost) -> None:
    host.failing["systemctl enable --now kooperant-agent.service"] = "Unit failed to start."
    config = write_config(tmp_path / "etc")

    result = install(config, tmp_path / "units")

    assert result.exit_code == 1
    assert "Unit failed to start." in result.stderr
    assert "Traceback" not in result.output


def test_uninstall_removes_unit(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"
    install(config, units)
    host.commands.clear()

    result = uninstall(units)

    assert result.exit_code == 0, result.output
    assert host.commands == [
        ["systemctl", "disable", "--now", UNIT],
        ["systemctl", "daemon-reload"],
    ]
    assert not (units / UNIT).exists()
    assert f"The config {config}, the audit log and the user kooperant stay" in result.stdout
    assert config.exists()


def test_uninstall_missing_unit(tmp_path: Path, host: FakeHost) -> None:
    result = uninstall(tmp_path, "--name", "hala2")

    assert result.exit_code == 1
    assert f"There is no unit {tmp_path / 'hala2.service'}" in result.stderr
    assert host.commands == []


def test_uninstall_foreign_unit_needs_force(tmp_path: Path, host: FakeHost) -> None:
    (tmp_path / UNIT).write_text("[Service]\nExecStart=/usr/bin/true\n", encoding="utf-8")

    refused = uninstall(tmp_path)
    forced = uninstall(tmp_path, "--force")

    assert refused.exit_code == 1
    assert "was not written by kooperant" in refused.stderr
    assert forced.exit_code == 0, forced.output
    assert not (tmp_path / UNIT).exists()


def test_uninstall_non_root_rejected(tmp_path: Path, host: FakeHost) -> None:
    host.root = False
    (tmp_path / UNIT).write_text(MARKER + "\n", encoding="utf-8")

    result = uninstall(tmp_path, language="pl")

    assert result.exit_code == 1
    assert "Instalacja i usuwanie usługi wymagają roota" in result.stderr
    assert f"--unit-dir {tmp_path}" in result.stderr
    assert (tmp_path / UNIT).exists()


def test_install_creates_writable_folders(tmp_path: Path, host: FakeHost) -> None:
    audit_folder = tmp_path / "var" / "kooperant"
    adapters = "  - type: opcua\n    name: hala\n    url: opc.tcp://127.0.0.1:4840\n"
    config = write_config(
        tmp_path / "etc", extra=f"audit_log: {audit_folder}/audit.db\n", adapters=adapters
    )

    result = install(config, tmp_path / "units")

    assert result.exit_code == 0, result.output
    for folder in (audit_folder, config.parent / "pki"):
        assert folder.is_dir()
        assert folder.stat().st_mode & 0o777 == 0o750
        assert f"Created {folder} for the user kooperant" in result.stdout


def test_install_unwritable_unit_dir(tmp_path: Path, host: FakeHost) -> None:
    config = write_config(tmp_path / "etc")
    units = tmp_path / "units"
    units.write_text("a file, not a folder", encoding="utf-8")

    result = install(config, units)

    assert result.exit_code == 1
    assert f"Cannot write {units / UNIT}" in result.stderr
    assert "Traceback" not in result.output
    assert ["systemctl", "daemon-reload"] not in host.commands
