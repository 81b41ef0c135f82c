"""Tests of bench/agent_footprint.py at a tiny size, so that the script keeps running.

The CPU and memory figures depend on the machine, so only their form and the counts are checked:
every monitored item created, every machine offered, and the republish rate as configured.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "bench" / "agent_footprint.py"

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None, reason="the script starts its own Mosquitto"
)


def run_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=170,
        cwd=REPO_ROOT,
    )


def figures(output: str) -> dict[str, str]:
    """Return the ``name: value`` lines of the output by name."""
    found = {}
    for line in output.splitlines():
        name, separator, value = line.partition(": ")
        if separator:
            found[name] = value
    return found


def number(text: str) -> float:
    match = re.match(r"-?[\d.]+", text)
    assert match is not None, text
    return float(match.group())


@pytest.mark.timeout(180)
def test_footprint_tiny_run() -> None:
    result = run_script(
        "--machines",
        "10",
        "--items-per-machine",
        "10",
        "--warmup",
        "2",
        "--duration",
        "12",
        "--publish-interval",
        "4",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-6].startswith("agent cpu: ")
    assert lines[-5].startswith("agent peak rss: ")
    assert lines[-4].startswith("offers published per minute: ")
    assert lines[-3] == "monitored items: 100"
    assert re.fullmatch(r"goal cpu <= 30 %: (met|NOT MET)", lines[-2])
    assert re.fullmatch(r"goal rss <= 150 MB: (met|NOT MET)", lines[-1])

    values = figures(result.stdout)
    assert values["resources with offers"] == "10"
    assert 0 < number(values["agent cpu"]) < 200
    assert 20 < number(values["agent peak rss"]) < 2000
    assert number(values["agent peak rss"]) >= number(values["agent mean rss"])
    # 10 offers every 4 s is 150 a minute; a 12 s window contains 2 to 4 republish rounds.
    assert 90 <= number(values["offers published per minute"]) <= 210
    assert number(values["offers in the window"]) > 0
    # 100 variables written once a second.
    assert 80 <= number(values["value changes on the server"]) <= 120
    assert 80 <= number(values["notifications sent by the server"]) <= 120


def test_footprint_bad_option_exits_2() -> None:
    result = run_script("--duration", "-5")

    assert result.returncode == 2
    assert "--duration" in result.stderr
    assert "-5" in result.stderr


def test_footprint_bad_items_exits_2() -> None:
    result = run_script("--items-per-machine", "99")

    assert result.returncode == 2
    assert "--items-per-machine 99" in result.stderr
