"""Tests of bench/offer_store.py with a few hundred offers, so that the script keeps running.

The rates are not checked against the goal because they depend on the machine. The tests check
the lines the script prints, that both sides stored every offer, and that it drops its
databases.
"""

from __future__ import annotations

import re
from functools import partial

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN_DSN, REPO_ROOT
from tests.support.bench_scripts import run_bench_script

SCRIPT = REPO_ROOT / "bench" / "offer_store.py"


run_script = partial(run_bench_script, SCRIPT, timeout=120)


def rate(line: str, name: str) -> float:
    match = re.fullmatch(rf"{name} store rate: (\d+) offers/s", line)
    assert match is not None, line
    return float(match[1])


@pytest.mark.postgres
def test_benchmark_tiny_run(postgres_url: str) -> None:
    result = run_script(
        "--database-url", postgres_url,
        "--offers", "600",
        "--members", "10",
        "--resources", "6",
        "--batch", "70",
        "--single-offers", "90",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("machine: ")
    assert "batch: checked 600 history rows and 60 current offers" in lines
    assert "single: checked 90 history rows and 60 current offers" in lines
    assert lines[-4] == "batch size: 70 offers"
    assert rate(lines[-3], "batch") > 0
    assert rate(lines[-2], "single") > 0
    assert re.fullmatch(r"goal batch store >= 20000 offers/s: (met|NOT MET)", lines[-1])

    databases = re.findall(r"^database: (kooperant_bench_\w+)$", result.stdout, re.MULTILINE)
    assert len(databases) == 2
    with psycopg.connect(POSTGRES_ADMIN_DSN) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (databases,)
        ).fetchall()
    assert left == []


@pytest.mark.parametrize(
    ("option", "value"),
    [("--batch", "0"), ("--offers", "many"), ("--database-url", "sqlite:///x.db")],
)
def test_benchmark_bad_option(option: str, value: str) -> None:
    result = run_script(option, value)

    assert result.returncode == 2
    assert option in result.stderr
    assert repr(value) in result.stderr
