"""Smoke tests of bench/message_checks.py with a few messages, so that the script keeps running.

The figures depend on the machine, so the tests check only that every line is there and that the
figures agree with each other.
"""

from __future__ import annotations

import re
from functools import partial

from tests.conftest import REPO_ROOT
from tests.support.bench_scripts import run_bench_script

SCRIPT = REPO_ROOT / "bench" / "message_checks.py"
KINDS = ("offer", "withdrawal", "status")


run_script = partial(run_bench_script, SCRIPT, timeout=120)


def figure(output: str, label: str) -> float:
    match = re.search(rf"^{re.escape(label)}: ([0-9.]+)", output, re.MULTILINE)
    assert match is not None, f"no line {label!r} in:\n{output}"
    return float(match.group(1))


def test_benchmark_few_messages() -> None:
    result = run_script("--messages", "200", "--rounds", "2")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("machine: ")
    assert "checked 400 messages of each kind, none rejected" in lines
    assert re.fullmatch(r"goal offer check <= 40 us: (met|NOT MET)", lines[-1])
    assert [line.split(":")[0] for line in lines[-7:-1]] == [
        *(f"{kind} check" for kind in KINDS),
        *(f"{kind} checks per second per core" for kind in KINDS),
    ]
    for kind in KINDS:
        microseconds = figure(result.stdout, f"{kind} check")
        per_second = figure(result.stdout, f"{kind} checks per second per core")
        assert microseconds > 0
        assert abs(per_second * microseconds / 1e6 - 1) < 0.01
    offer = figure(result.stdout, "offer check")
    python_only = figure(result.stdout, "offer check with jsonschema only")
    assert python_only > offer
    verdict = "met" if offer <= 40 else "NOT MET"
    assert lines[-1].endswith(f": {verdict}")


def test_benchmark_rejects_zero_messages() -> None:
    result = run_script("--messages", "0")

    assert result.returncode == 2
    assert "argument --messages: expected a whole number of at least 1, got '0'" in result.stderr


def test_benchmark_rejects_text_as_rounds() -> None:
    result = run_script("--rounds", "many")

    assert result.returncode == 2
    assert "argument --rounds: expected a whole number of at least 1, got 'many'" in result.stderr
