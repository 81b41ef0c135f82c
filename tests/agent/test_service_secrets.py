"""``install-service`` and the secret files of the config: checked, and granted on request.

The files are laid out as ``kooperant agent init`` writes them when run with sudo: the config
folder 0755, ``secrets/`` 0700 and the password 0600, all owned by root. The service user has
other ids than the files, so these tests need root to create such files.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agent import service_cli
from agent.cli import app
from agent.service_access import UserIds
from tests.agent.service_samples import FakeHost, write_config

UNIT = "kooperant-agent.service"
SECRET = "tajne-Haslo-7"
SERVICE_UID = 54_321
SERVICE_GID = 54_322
# The config folder stays root's, so the audit log goes where every user may write.
AUDIT_LOG = "audit_log: /tmp/kooperant-secrets-audit.db\n"

pytestmark = pytest.mark.skipif(
    os.getuid() != 0, reason="the files must belong to another user than the service user"
)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    service_user = UserIds("kooperant", SERVICE_UID, frozenset({SERVICE_GID}), SERVICE_GID)
    fake = FakeHost(users={"kooperant": service_user})
    monkeypatch.setattr(service_cli, "system_host", fake)
    monkeypatch.setattr(service_cli, "is_windows", lambda: False)
    # The test's own Python may be below /root, which the service user cannot enter. The
    # system Python replaces it, as a virtual environment in /opt would.
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    monkeypatch.setattr(sys, "prefix", "/usr")
    return fake


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder every user may enter, unlike pytest's tmp_path below a 0700 folder."""
    path = Path(tempfile.mkdtemp(prefix="kooperant-secrets-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def write_init_config(folder: Path) -> tuple[Path, Path]:
    """Write a config whose password is in secrets/broker-password, as init does."""
    config = write_config(
        folder / "etc",
        extra=AUDIT_LOG,
        broker_url="mqtt://127.0.0.1:1\n  username: acme\n"
        "  password: ${file:secrets/broker-password}",
    )
    secrets = config.parent / "secrets"
    secrets.mkdir(mode=0o700)
    secrets.chmod(0o700)
    password = secrets / "broker-password"
    password.write_text(SECRET, encoding="utf-8")
    password.chmod(0o600)
    return config, password


def install(config: Path, units: Path, *options: str, language: str = "en") -> Result:
    arguments = ["install-service", "--config", str(config), "--unit-dir", str(units)]
    return CliRunner().invoke(app, [*arguments, *options], env={"KOOPERANT_LANG": language})


@pytest.fixture(autouse=True)
def audit_folder_writable() -> Iterator[None]:
    yield
    Path("/tmp/kooperant-secrets-audit.db").unlink(missing_ok=True)


def test_install_unreadable_secret_rejected(folder: Path, host: FakeHost) -> None:
    config, password = write_init_config(folder)
    units = folder / "units"

    result = install(config, units)

    assert result.exit_code == 1
    assert "cannot read the secret files of the config" in result.stderr
    assert "--grant-secrets" in result.stderr
    secrets = password.parent
    assert f"sudo chgrp {SERVICE_GID} {secrets} && sudo chmod g+x {secrets}" in result.stderr
    assert f"sudo chgrp {SERVICE_GID} {password} && sudo chmod g+r {password}" in result.stderr
    assert SECRET not in result.output
    assert not (units / UNIT).exists()
    assert host.commands == []
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert password.stat().st_gid == 0


def test_install_unreadable_secret_rejected_pl(folder: Path, host: FakeHost) -> None:
    config, _ = write_init_config(folder)

    result = install(config, folder / "units", language="pl")

    assert result.exit_code == 1
    assert "nie może czytać plików z sekretami" in result.stderr


def test_install_grant_secrets_changes_group(folder: Path, host: FakeHost) -> None:
    config, password = write_init_config(folder)
    units = folder / "units"

    result = install(config, units, "--grant-secrets")

    assert result.exit_code == 0, result.output
    assert (units / UNIT).exists()
    secrets = password.parent
    assert password.stat().st_gid == SERVICE_GID
    assert stat.S_IMODE(password.stat().st_mode) == 0o640
    assert password.stat().st_uid == 0
    assert secrets.stat().st_gid == SERVICE_GID
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o710
    assert f"Gave the group {SERVICE_GID} access to {password} (g+r)." in result.stdout
    assert f"Gave the group {SERVICE_GID} access to {secrets} (g+x)." in result.stdout


def test_install_grant_secrets_keeps_other_group(folder: Path, host: FakeHost) -> None:
    config, password = write_init_config(folder)
    password.chmod(0o640)
    units = folder / "units"

    result = install(config, units, "--grant-secrets")

    assert result.exit_code == 1
    assert "could take access from others" in result.stderr
    assert f"sudo chgrp {SERVICE_GID} {password} && sudo chmod g+r {password}" in result.stderr
    assert not (units / UNIT).exists()
    assert password.stat().st_gid == 0
    assert password.parent.stat().st_gid == 0


def test_install_grant_secrets_outside_config_folder(folder: Path, host: FakeHost) -> None:
    private = folder / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    secret = private / "password"
    secret.write_text(SECRET, encoding="utf-8")
    secret.chmod(0o600)
    config = write_config(
        folder / "etc",
        extra=AUDIT_LOG,
        broker_url=f"mqtt://127.0.0.1:1\n  username: acme\n  password: ${{file:{secret}}}",
    )

    result = install(config, folder / "units", "--grant-secrets")

    assert result.exit_code == 1
    assert f"sudo chgrp {SERVICE_GID} {private} && sudo chmod g+x {private}" in result.stderr
    assert private.stat().st_gid == 0
    assert secret.stat().st_gid == 0


def test_install_file_variable_secret_checked(
    folder: Path, host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        folder / "etc",
        extra=AUDIT_LOG,
        broker_url="mqtt://127.0.0.1:1\n  username: acme\n  password: null",
    )
    password = config.parent / "password.txt"
    password.write_text(SECRET, encoding="utf-8")
    password.chmod(0o600)
    environment = config.parent / "agent.env"
    environment.write_text("KOOPERANT_AGENT__BROKER__PASSWORD_FILE=password.txt\n")

    result = install(config, folder / "units", "--environment-file", str(environment))

    assert result.exit_code == 1
    assert f"sudo chgrp {SERVICE_GID} {password} && sudo chmod g+r {password}" in result.stderr


def test_install_readable_secret_needs_nothing(folder: Path, host: FakeHost) -> None:
    config, password = write_init_config(folder)
    os.chown(password.parent, -1, SERVICE_GID)
    password.parent.chmod(0o750)
    os.chown(password, -1, SERVICE_GID)
    password.chmod(0o640)

    result = install(config, folder / "units")

    assert result.exit_code == 0, result.output
    assert "Gave the group" not in result.stdout
