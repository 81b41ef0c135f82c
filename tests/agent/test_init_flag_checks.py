"""``kooperant agent init --non-interactive``: control characters, repeated servers, check order."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.init_cli import EXIT_INIT_FAILED

REQUIRED = ("--member", "acme", "--cluster", "c1")


def init(*arguments: str, language: str = "en") -> tuple[int, str, str]:
    """Run ``kooperant agent init`` with ``arguments``; return exit code, stdout and stderr."""
    result = CliRunner().invoke(
        app, ["init", "--non-interactive", *arguments], env={"KOOPERANT_LANG": language}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--export", "stock=st\x07an\ty.csv"],
            r"Invalid value of --export 'stock=st\x07an\ty.csv': 'st\x07an\ty.csv' contains the "
            r"control or format character U+0007 at position 3",
        ),
        (
            ["--opcua", "opc.tcp://plc\x1b[31m:4840"],
            r"Invalid value of --opcua 'opc.tcp://plc\x1b[31m:4840': "
            r"'opc.tcp://plc\x1b[31m:4840' contains the control or format character U+001B",
        ),
        (
            ["--broker-url", "mqtt://broker\t:1883"],
            r"Invalid value of --broker-url 'mqtt://broker\t:1883': 'mqtt://broker\t:1883' "
            "contains the control or format character U+0009 at position 14",
        ),
        (
            ["--broker-username", "a\x1b[31mb"],
            r"Invalid value of --broker-username 'a\x1b[31mb': 'a\x1b[31mb' contains",
        ),
        (
            ["--broker-username", "agent", "--broker-password-file", "pw\u202e.txt"],
            r"Invalid value of --broker-password-file 'pw\u202e.txt': 'pw\u202e.txt' contains "
            "the control or format character U+202E at position 3",
        ),
    ],
)
def test_init_control_character_rejected(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    output = tmp_path / "out"

    code, stdout, stderr = init(*REQUIRED, *arguments, "--output", str(output))

    assert code == EXIT_INIT_FAILED, stdout + stderr
    assert message in stderr
    assert "\x07" not in stderr
    assert "\x1b" not in stderr
    assert "Nothing was written." in stderr
    assert not output.exists()


def test_init_control_character_in_output(tmp_path: Path) -> None:
    output = tmp_path / "x\u202e5"

    code, _, stderr = init(*REQUIRED, "--output", str(output))

    assert code == EXIT_INIT_FAILED
    assert r"Invalid value of --output" in stderr
    assert r"x\u202e5' contains the control or format character U+202E" in stderr
    assert "\u202e" not in stderr
    assert not output.exists()


def test_init_control_character_in_polish(tmp_path: Path) -> None:
    code, _, stderr = init(
        *REQUIRED, "--export", "stock=a\tb.csv", "--output", str(tmp_path), language="pl"
    )

    assert code == EXIT_INIT_FAILED
    assert r"'a\tb.csv' zawiera znak sterujący lub formatujący U+0009 na pozycji 2" in stderr
    assert not (tmp_path / "agent.yaml").exists()


def test_init_bad_url_stops_before_browsing(tmp_path: Path, free_port: int) -> None:
    unreachable = f"opc.tcp://127.0.0.1:{free_port}"

    code, stdout, stderr = init(
        *REQUIRED, "--opcua", unreachable, "--opcua", "http://x", "--output", str(tmp_path)
    )

    assert code == EXIT_INIT_FAILED
    assert "Invalid value of --opcua 'http://x'" in stderr
    assert "Browsing" not in stdout + stderr
    assert not (tmp_path / "agent.yaml").exists()


@pytest.mark.parametrize("repeated", ["{url}", "{url}/", " {url}"])
def test_init_repeated_opcua_rejected(tmp_path: Path, free_port: int, repeated: str) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port}"
    repeated = repeated.format(url=url)

    code, stdout, stderr = init(
        *REQUIRED, "--opcua", url, "--opcua", repeated, "--output", str(tmp_path)
    )

    assert code == EXIT_INIT_FAILED
    assert f"Invalid value of --opcua {repeated!r}" in stderr
    assert "is already added; give each server once" in stderr
    assert "Browsing" not in stdout + stderr
    assert not (tmp_path / "agent.yaml").exists()
