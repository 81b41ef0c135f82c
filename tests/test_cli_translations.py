"""Typer's own help layout and usage errors in the ``kooperant`` command, in Polish and English.

Each test runs ``python -m kooperant`` in a subprocess, so the translation hooks, which patch typer
modules for the whole process, never reach the CliRunner tests that share this pytest process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# Wide enough that rich does not wrap the help texts checked here.
COLUMNS = "200"

# Runs the real entry point twice in one process, Polish first and then English, and separates
# the two outputs with a marker line.
BOTH_LANGUAGES = """
import os, sys
from kooperant.cli import main

for language in ("pl", "en"):
    os.environ["KOOPERANT_LANG"] = language
    sys.argv = ["kooperant", *sys.argv[1:]]
    try:
        main()
    except SystemExit:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    print("=== END ===", flush=True)
    print("=== END ===", file=sys.stderr, flush=True)
"""


def environment(language: str) -> dict[str, str]:
    env = {**os.environ, "KOOPERANT_LANG": language, "COLUMNS": COLUMNS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    return env


def run_kooperant(language: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kooperant", *arguments],
        capture_output=True,
        text=True,
        env=environment(language),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def test_help_polish() -> None:
    result = run_kooperant("pl", "--help")

    assert result.returncode == 0, result.stderr
    assert "Użycie: " in result.stdout
    assert "─ Opcje ─" in result.stdout
    assert "─ Polecenia ─" in result.stdout
    assert "Pokaż tę pomoc i zakończ." in result.stdout
    assert "Zainstaluj uzupełnianie poleceń dla bieżącej powłoki." in result.stdout
    assert "Usage:" not in result.stdout
    assert "Show this message and exit." not in result.stdout
    assert "Install completion" not in result.stdout


def test_help_english() -> None:
    result = run_kooperant("en", "--help")

    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout
    assert "─ Options ─" in result.stdout
    assert "─ Commands ─" in result.stdout
    assert "Show this message and exit." in result.stdout
    assert "Install completion for the current shell." in result.stdout
    assert "Użycie" not in result.stdout


def test_subcommand_help_polish_defaults() -> None:
    result = run_kooperant("pl", "server", "run", "--help")

    assert result.returncode == 0, result.stderr
    assert "[domyślnie: 8000]" in result.stdout
    assert "[default:" not in result.stdout
    assert "Pokaż tę pomoc i zakończ." in result.stdout


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "pl",
            [
                "Użycie: ",
                "agent check --help', aby wyświetlić pomoc.",
                "─ Błąd ─",
                "Nie ma takiej opcji: --nonexistent-option",
            ],
        ),
        (
            "en",
            [
                "Usage: ",
                "agent check --help' for help.",
                "─ Error ─",
                "No such option: --nonexistent-option",
            ],
        ),
    ],
)
def test_unknown_option_error(language: str, expected: list[str]) -> None:
    result = run_kooperant(language, "agent", "check", "--nonexistent-option")

    assert result.returncode == 2
    for text in expected:
        assert text in result.stderr


def test_error_with_suggestion_polish() -> None:
    result = run_kooperant("pl", "agent", "chek")

    assert result.returncode == 2
    assert "Nie ma takiego polecenia: 'chek'. Czy chodziło o 'check'?" in result.stderr


def test_missing_option_polish() -> None:
    result = run_kooperant("pl", "agent", "check")

    assert result.returncode == 2
    assert "Brak opcji '--config' / '-c'." in result.stderr


def test_invalid_value_polish() -> None:
    result = run_kooperant("pl", "server", "run", "--port", "99999")

    assert result.returncode == 2
    assert "Nieprawidłowa wartość parametru '--port':" in result.stderr


def run_both_languages(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``kooperant ARGUMENTS`` in Polish, then in English, in one Python process."""
    return subprocess.run(
        [sys.executable, "-c", BOTH_LANGUAGES, *arguments],
        capture_output=True,
        text=True,
        env=environment("pl"),
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def test_languages_switch_in_one_process() -> None:
    result = run_both_languages("--help")
    polish, english, _rest = result.stdout.split("=== END ===\n")

    assert "─ Opcje ─" in polish
    assert "Pokaż tę pomoc i zakończ." in polish
    assert "─ Options ─" in english
    assert "─ Commands ─" in english
    assert "Usage: " in english
    assert "Show this message and exit." in english
    assert "Install completion for the current shell." in english
    assert "Opcje" not in english


def test_errors_switch_in_one_process() -> None:
    result = run_both_languages("agent", "check", "--nonexistent-option")
    polish, english, _rest = result.stderr.split("=== END ===\n")

    assert "─ Błąd ─" in polish
    assert "Nie ma takiej opcji: --nonexistent-option" in polish
    assert "─ Error ─" in english
    assert "No such option: --nonexistent-option" in english
    assert "agent check --help' for help." in english


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "pl",
            "Nie ma takiej opcji: --log-file. To opcja samego polecenia python -m kooperant, więc "
            "podaj ją przed podpoleceniem: python -m kooperant --log-file PATH agent check …",
        ),
        (
            "en",
            "No such option: --log-file. It is an option of python -m kooperant itself, so put it "
            "before the sub-command: python -m kooperant --log-file PATH agent check …",
        ),
    ],
)
def test_root_option_after_subcommand(language: str, expected: str) -> None:
    result = run_kooperant(language, "agent", "check", "--log-file", "/tmp/x.log")

    assert result.returncode == 2
    assert expected in result.stderr
    assert "--offline" not in result.stderr


def test_root_flag_after_subcommand_has_no_value() -> None:
    result = run_kooperant("en", "server", "run", "--verbose")

    assert result.returncode == 2
    assert "python -m kooperant --verbose server run …" in result.stderr


def test_unlike_option_gets_no_suggestion() -> None:
    result = run_kooperant("pl", "server", "run", "--bogus")

    assert result.returncode == 2
    assert "Nie ma takiej opcji: --bogus" in result.stderr
    assert "możliwe opcje" not in result.stderr


def test_misspelt_option_gets_suggestion() -> None:
    result = run_kooperant("pl", "server", "run", "--prot", "1")

    assert result.returncode == 2
    assert "Nie ma takiej opcji: --prot (możliwe opcje: --port)" in result.stderr
