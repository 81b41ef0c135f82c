"""The ``kooperant`` command imports the aggregator and the demo only for their sub-commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("server", "kooperant.demo.cli", "kooperant.demo.runner", "sqlalchemy", "fastapi")


def imported_after(code: str) -> list[str]:
    """Return the modules of HEAVY that a fresh interpreter has imported after ``code``."""
    script = (
        f"{code}\nimport sys\n"
        f"print('\\n'.join(name for name in sys.modules if name.startswith({HEAVY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    return result.stdout.split()


def test_cli_import_leaves_server_out() -> None:
    assert imported_after("import kooperant.cli") == []


def test_cli_server_command_loads_server() -> None:
    code = (
        "import click, typer, kooperant.cli\n"
        "group = typer.main.get_group(kooperant.cli.app)\n"
        "assert group.get_command(click.Context(group), 'server') is not None"
    )

    assert "server.cli" in imported_after(code)


def test_cli_help_lists_commands_in_order() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kooperant", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8", "COLUMNS": "100"},
    )

    listed = [
        line.split()[1]
        for line in result.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2
    ]
    commands = [name for name in listed if name in ("agent", "server", "adapter", "demo")]
    assert commands == ["agent", "server", "adapter", "demo"]
