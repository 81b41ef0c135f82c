"""``kooperant agent init --audit-log``: the default for root and others, the flag, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent import init_answers
from agent.config import load_config
from agent.init_cli import EXIT_INIT_FAILED
from tests.agent.test_init_flags import init

IDENTITY = ("--member", "acme", "--cluster", "c1")


def written_audit_log(folder: Path) -> object:
    return yaml.safe_load((folder / "agent.yaml").read_text("utf-8"))["audit_log"]


def test_audit_log_root_default_checks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mosquitto_url: str,
    service_audit_log: Path,
) -> None:
    monkeypatch.setattr(init_answers, "is_linux_root", lambda: True)

    code, stdout, stderr = init(*IDENTITY, "--broker-url", mosquitto_url, "--output", str(tmp_path))

    assert code == 0, stdout + stderr
    assert written_audit_log(tmp_path) == str(service_audit_log)
    assert load_config(tmp_path / "agent.yaml").audit_log_path == service_audit_log
    # The check passed without the folder; install-service creates it for the service user.
    assert not service_audit_log.parent.exists()


def test_audit_log_default_next_to_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(init_answers, "is_linux_root", lambda: False)

    code, stdout, stderr = init(*IDENTITY, "--output", str(tmp_path), "--skip-check")

    assert code == 0, stdout + stderr
    assert written_audit_log(tmp_path) == "kooperant-audit.db"
    assert load_config(tmp_path / "agent.yaml").audit_log_path == tmp_path / "kooperant-audit.db"


def test_audit_log_comment_explains_key(tmp_path: Path) -> None:
    code, stdout, stderr = init(*IDENTITY, "--output", str(tmp_path), "--skip-check")

    assert code == 0, stdout + stderr
    text = (tmp_path / "agent.yaml").read_text("utf-8")
    assert "# The audit log (dziennik audytu)" in text
    assert "the service\n# user (użytkownik usługi)" in text
    assert "\naudit_log: " in text


@pytest.mark.parametrize("value", ["state/audit.db", "../data/audit.db"])
def test_audit_log_relative_flag_kept(tmp_path: Path, value: str) -> None:
    output = tmp_path / "site"

    code, stdout, stderr = init(
        *IDENTITY, "--audit-log", value, "--output", str(output), "--skip-check"
    )

    assert code == 0, stdout + stderr
    assert written_audit_log(output) == value
    assert load_config(output / "agent.yaml").audit_log_path == output / value


def test_audit_log_absolute_flag_loads(tmp_path: Path, mosquitto_url: str) -> None:
    audit_log = tmp_path / "data with space" / "audit.db"
    output = tmp_path / "site"

    code, stdout, stderr = init(
        *IDENTITY,
        *("--broker-url", mosquitto_url, "--audit-log", str(audit_log), "--output", str(output)),
    )

    assert code == 0, stdout + stderr
    assert written_audit_log(output) == str(audit_log)
    assert load_config(output / "agent.yaml").audit_log_path == audit_log
    assert not audit_log.parent.exists()


def test_audit_log_bad_values_write_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    output = tmp_path / "out"
    cases = [
        (" ", "Invalid value of --audit-log ' ': the path is empty"),
        (str(tmp_path), f"Invalid value of --audit-log '{tmp_path}': {tmp_path} is a folder"),
        (
            str(blocker / "audit.db"),
            f"Invalid value of --audit-log '{blocker / 'audit.db'}': {blocker} is a file",
        ),
        (
            str(blocker / "deeper" / "audit.db"),
            f"{blocker} is a file, not a folder",
        ),
    ]

    for value, message in cases:
        code, stdout, stderr = init(*IDENTITY, "--audit-log", value, "--output", str(output))

        assert code == EXIT_INIT_FAILED, f"{value!r}: {stdout}{stderr}"
        assert message in stderr, value
        assert not output.exists(), value


def test_audit_log_relative_folder_rejected(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()

    code, _, stderr = init(*IDENTITY, "--audit-log", "state", "--output", str(tmp_path))

    assert code == EXIT_INIT_FAILED
    assert f"Invalid value of --audit-log 'state': {tmp_path / 'state'} is a folder" in stderr
    assert not (tmp_path / "agent.yaml").exists()


def test_audit_log_bad_value_in_polish(tmp_path: Path) -> None:
    code, _, stderr = init(
        *IDENTITY, "--audit-log", str(tmp_path), "--output", str(tmp_path), language="pl"
    )

    assert code == EXIT_INIT_FAILED
    assert f"Błędna wartość opcji --audit-log '{tmp_path}': {tmp_path} jest folderem" in stderr
    assert "Nic nie zostało zapisane." in stderr
