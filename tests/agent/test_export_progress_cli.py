"""Tests of the export read progress that ``kooperant agent preview`` and ``check`` show.

The agent config has one stock adapter whose stock list is large enough (about 20 MB) that its
parse takes seconds. The command runs in a child process under a pseudo-terminal (pexpect) for
the progress lines, and with its output piped for the case without a terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND = "from kooperant.cli import main; main()"
HEADER = "Indeks;Nazwa;Magazyn;Ilość;J.m.;Rezerwa;Cena\r\n"
ROWS = 500_000
POLICY = "share:\n  - resource: it-0001\n    fields: [name, amounts]\n"
READING = {"en": "Reading stany.csv", "pl": "Odczyt pliku stany.csv"}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write an agent config with a stock adapter and a stock list of ``ROWS`` rows."""
    folder = tmp_path_factory.mktemp("export-progress")
    with (folder / "stany.csv").open("w", encoding="utf-8", newline="") as stream:
        stream.write(HEADER)
        for number in range(ROWS):
            stream.write(f"IT-{number % 500:04d};Blacha;MAG-{number % 7};12,5;kg;;6,85\r\n")
    (folder / "policy.yaml").write_text(POLICY, encoding="utf-8")
    config = f"""
        member: acme
        cluster: progress-test
        broker:
          url: mqtt://127.0.0.1:1883
        policy: policy.yaml
        audit_log: {folder / "audit.db"}
        adapters:
          - type: stock
            name: stany
            path: stany.csv
            stable_seconds: 0
    """
    path = folder / "agent.yaml"
    path.write_text(textwrap.dedent(config), encoding="utf-8")
    return path


def command_environment(language: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT),
        "KOOPERANT_LANG": language,
        "TERM": "xterm-256color",
    }


def run_in_terminal(*arguments: str, language: str) -> tuple[int, str]:
    """Run ``kooperant agent ARGUMENTS`` under a pseudo-terminal; return status and output."""
    child = pexpect.spawn(
        sys.executable,
        ["-c", COMMAND, "agent", *arguments],
        cwd=REPO_ROOT,
        env=command_environment(language),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=300,
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus or 0, child.before or ""


@pytest.mark.parametrize("language", ["en", "pl"])
def test_preview_terminal_shows_file_progress(config_path: Path, language: str) -> None:
    status, output = run_in_terminal(
        "preview", "--config", str(config_path), "--wait", "120", language=language
    )

    assert status == 0, output
    assert READING[language] in output
    assert "it-0001" in output


def test_check_terminal_shows_file_progress(config_path: Path) -> None:
    status, output = run_in_terminal(
        "check", "--config", str(config_path), "--wait", "120", language="en"
    )

    assert READING["en"] in output, output
    assert status in (0, 1), output


def test_preview_json_in_terminal_no_progress(config_path: Path) -> None:
    status, output = run_in_terminal(
        "preview", "--config", str(config_path), "--wait", "120", "--json", language="en"
    )

    assert status == 0, output
    assert READING["en"] not in output
    assert "\x1b[?25l" not in output


def test_preview_piped_no_progress(config_path: Path) -> None:
    arguments = ["preview", "--config", str(config_path), "--wait", "120"]
    result = subprocess.run(
        [sys.executable, "-c", COMMAND, "agent", *arguments],
        cwd=REPO_ROOT,
        env=command_environment("en"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert READING["en"] not in result.stderr
    assert "\x1b[" not in result.stderr
    assert "it-0001" in result.stdout
