"""Tests of bench/latency.py with a few samples, so that the script keeps running.

The latencies are not checked against the goal because they depend on the machine. The tests
check the lines the script prints: every sample became visible, every hop was found in the logs,
the percentiles are ordered and the goal line agrees with p95.
"""

from __future__ import annotations

import re
from functools import partial

from adapters.opcua.settings import OpcUaSettings
from tests.conftest import REPO_ROOT
from tests.support.bench_scripts import needs_mosquitto, run_bench_script

SCRIPT = REPO_ROOT / "bench" / "latency.py"
HOP_LINE = re.compile(r"^  (.+?) +p50 +([-\d.]+)  p95 +([-\d.]+)  max +([-\d.]+)  n=(\d+)$")


run_script = partial(run_bench_script, SCRIPT)


def figures(output: str) -> dict[str, str]:
    """Return the ``name: value`` lines after the hop breakdown."""
    found = {}
    for line in output.splitlines():
        name, separator, value = line.partition(": ")
        if separator and not line.startswith(" "):
            found[name] = value
    return found


def milliseconds(text: str) -> float:
    match = re.fullmatch(r"(\d+) ms", text)
    assert match is not None, text
    return float(match.group(1))


@needs_mosquitto
def test_benchmark_few_samples() -> None:
    result = run_script(
        "--samples", "4",
        "--min-gap", "0.3",
        "--max-gap", "0.6",
        "--idle-seconds", "1",
        "--seed", "3",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    values = figures(result.stdout)
    defaults = OpcUaSettings.model_fields
    assert values["samples"] == "4"
    assert values["timeouts"] == "0"
    assert float(values["sampling_interval_ms"]) == defaults["sampling_interval_ms"].default
    assert float(values["publishing_interval_ms"]) == defaults["publishing_interval_ms"].default
    assert "agent CPU while idle" in values
    p50, p95, largest = (milliseconds(values[name]) for name in ("p50", "p95", "max"))
    assert 0 < p50 <= p95 <= largest
    assert lines[-1] == f"goal p95 <= 1000 ms: {'met' if p95 <= 1000 else 'NOT MET'}"

    hops = [match for line in lines if (match := HOP_LINE.match(line))]
    assert len(hops) == 7
    requests = hops.pop()
    assert requests.group(1) == "one API request while polling"
    assert int(requests.group(5)) >= 4
    for hop in hops:
        # Every sample's hop was found in the logs or by the broker subscriber.
        assert hop.group(5) == "4", hop.group(0)
        assert float(hop.group(2)) <= float(hop.group(3)) <= float(hop.group(4)), hop.group(0)
    sampling = hops[0]
    assert sampling.group(1) == "server sampling (change to value written)"
    assert float(sampling.group(4)) <= float(values["sampling_interval_ms"]) + 100


def test_benchmark_rejects_zero_samples() -> None:
    result = run_script("--samples", "0", timeout=60)

    assert result.returncode == 2
    assert "invalid --samples value '0'" in result.stderr


def test_benchmark_rejects_gaps_out_of_order() -> None:
    result = run_script("--min-gap", "2", "--max-gap", "1", timeout=60)

    assert result.returncode == 2
    assert "invalid --max-gap value 1" in result.stderr


def test_benchmark_rejects_sqlite_database_url() -> None:
    result = run_script("--database-url", "sqlite:///bench.db", timeout=60)

    assert result.returncode == 2
    assert "invalid --database-url value 'sqlite:///bench.db'" in result.stderr
