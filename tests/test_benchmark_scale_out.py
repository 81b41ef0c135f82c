"""Tests of bench/scale_out.py with a tiny backlog, so that the script keeps running.

The ratio is not checked against a goal because it depends on the machine. The tests check that
both drains stored every queued offer, that two workers shared the backlog, the form of the last
lines, and that bad options exit with status 2.
"""

from __future__ import annotations

import re
from functools import partial

import pytest

from tests.conftest import REPO_ROOT
from tests.support.bench_scripts import needs_mosquitto, run_bench_script

SCRIPT = REPO_ROOT / "bench" / "scale_out.py"


run_script = partial(run_bench_script, SCRIPT)


@needs_mosquitto
def test_benchmark_tiny_backlog(postgres_url: str) -> None:
    result = run_script(
        "--database-url", postgres_url,
        "--members", "4",
        "--resources", "3",
        "--backlog", "60",
        "--drain-limit", "60",
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    one = re.fullmatch(r"1 worker\(s\): (\d+) offers/s", lines[-3])
    two = re.fullmatch(r"2 worker\(s\): (\d+) offers/s", lines[-2])
    ratio = re.fullmatch(r"scale-out ratio: (\d+\.\d\d)", lines[-1])
    assert one is not None, lines[-3]
    assert two is not None, lines[-2]
    assert ratio is not None, lines[-1]
    one_rate, two_rate = int(one.group(1)), int(two.group(1))
    assert one_rate > 0
    # The rates are printed rounded to whole offers/s, the ratio from the unrounded rates.
    assert (two_rate - 0.5) / (one_rate + 0.5) - 0.005 <= float(ratio.group(1))
    assert float(ratio.group(1)) <= (two_rate + 0.5) / (one_rate - 0.5) + 0.005
    assert lines[-5] == "loss with 1 worker(s): 0 missing, 0 rejected"
    assert lines[-4] == "loss with 2 worker(s): 0 missing, 0 rejected"

    queued = [line for line in lines if re.fullmatch(r"\d worker\(s\): queued 60 offers", line)]
    assert len(queued) == 2
    drains = [
        re.search(r"stored (\d+) of 60 .* per worker \[([\d, ]+)\]$", line)
        for line in lines
        if " stored " in line and " per worker " in line
    ]
    assert len(drains) == 2
    assert drains[0] is not None
    assert drains[1] is not None
    assert int(drains[0].group(1)) == 60
    assert int(drains[1].group(1)) == 60
    per_worker = [int(item) for item in drains[1].group(2).split(",")]
    assert len(per_worker) == 2
    assert sum(per_worker) == 60
    assert min(per_worker) > 0


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        ("--workers", "1,two", "--workers '1,two' is not a comma-separated list of integers"),
        ("--workers", "0,2", "--workers '0,2' must be positive integers"),
        ("--backlog", "0", "--backlog 0 must be positive"),
        ("--inflight", "70000", "--inflight 70000 exceeds 65535"),
        ("--database-url", "sqlite:///x.db", "--database-url must be a PostgreSQL URL"),
    ],
)
def test_benchmark_rejects_bad_option(option: str, text: str, message: str) -> None:
    result = run_script(option, text)

    assert result.returncode == 2
    assert message in result.stderr
