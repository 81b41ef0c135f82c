"""Tests of bench/agent_footprint.py at a tiny size, so that the script keeps running.

The CPU and memory figures depend on the machine, so only their form and the counts are checked:
every monitored item created, every machine offered, and the republish rate as configured. The
tiny run goes once with each OPC UA load server: node-opcua (skipped without Node.js or the
packages of tests/support/node_opcua) and asyncua.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from functools import partial
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT
from tests.support.bench_scripts import needs_mosquitto, run_bench_script

SCRIPT = REPO_ROOT / "bench" / "agent_footprint.py"
NODE_MODULES = REPO_ROOT / "tests" / "support" / "node_opcua" / "node_modules"


def node_server_skip_reason() -> str | None:
    """Return why the node-opcua load server cannot run here, or None."""
    if shutil.which("node") is None:
        return "Node.js (node) is not installed"
    if not (NODE_MODULES / "node-opcua").is_dir():
        return f"node-opcua is not installed in {NODE_MODULES}; run scripts/test or npm ci"
    return None


LOAD_SERVERS = [
    pytest.param(
        "node",
        marks=pytest.mark.skipif(
            node_server_skip_reason() is not None, reason=str(node_server_skip_reason())
        ),
    ),
    "asyncua",
]

pytestmark = needs_mosquitto


run_script = partial(run_bench_script, SCRIPT)


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
@pytest.mark.parametrize("load_server", LOAD_SERVERS)
def test_footprint_tiny_run(load_server: str) -> None:
    result = run_script(
        "--load-server",
        load_server,
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
    assert f"load server: {load_server}" in result.stdout.splitlines()
    lines = result.stdout.splitlines()
    assert lines[-6].startswith("agent cpu: ")
    assert lines[-5].startswith("agent peak rss: ")
    assert lines[-4].startswith("offers published per minute: ")
    assert lines[-3] == "monitored items: 100"
    assert re.fullmatch(r"goal cpu <= 30 %: (met|NOT MET|not shown .*)", lines[-2])
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
    achieved = values["notification rate achieved"]
    assert re.fullmatch(r"\d+ per second, \d+ % of the configured 100", achieved), achieved


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_footprint", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the module runs.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_cpu_goal_low_rate_not_shown() -> None:
    script = load_script()

    assert script.cpu_goal_verdict(5.0, 0.95) == "met"
    assert script.cpu_goal_verdict(45.0, 0.9) == "NOT MET"
    assert script.cpu_goal_verdict(5.0, 0.12) == "not shown (only 12 % of the notification rate)"
    assert script.cpu_goal_verdict(45.0, 0.89).startswith("not shown")


def test_footprint_bad_option_exits_2() -> None:
    result = run_script("--duration", "-5")

    assert result.returncode == 2
    assert "--duration" in result.stderr
    assert "-5" in result.stderr


def test_footprint_bad_load_server_exits_2() -> None:
    result = run_script("--load-server", "opc-foundation")

    assert result.returncode == 2
    assert "--load-server" in result.stderr
    assert "opc-foundation" in result.stderr


def test_footprint_bad_items_exits_2() -> None:
    result = run_script("--items-per-machine", "99")

    assert result.returncode == 2
    assert "--items-per-machine 99" in result.stderr
