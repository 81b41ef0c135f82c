"""Tests of bench/ingest_drain.py with a few offers, so that the script keeps running.

The rates are not checked against the goals because they depend on the machine. The tests
check that every queued offer was stored and received, that the figures agree with each other,
that the script drops its database, and that bad options exit with 2.
"""

from __future__ import annotations

import re
from functools import partial

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN_DSN, REPO_ROOT
from tests.support.bench_scripts import run_bench_script

SCRIPT = REPO_ROOT / "bench" / "ingest_drain.py"
OFFERS = 60


run_script = partial(run_bench_script, SCRIPT)


def figure(lines: list[str], name: str) -> float:
    pattern = re.compile(rf"^{re.escape(name)}: ([\d.]+)")
    for line in lines:
        match = pattern.match(line)
        if match:
            return float(match.group(1))
    raise AssertionError(f"no line '{name}: ...' in {lines}")


@pytest.mark.mosquitto
def test_benchmark_drains_every_offer(postgres_url: str) -> None:
    result = run_script("--database-url", postgres_url, "--offers", str(OFFERS), "--members", "6")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cpus: ")
    assert any(line.startswith("mosquitto: mosquitto version") for line in lines)
    assert f"ingest stored: {OFFERS} of {OFFERS} offers" in lines
    assert f"bare subscriber received: {OFFERS} of {OFFERS} messages" in lines

    ingest_rate = figure(lines, "ingest drain rate")
    bare_rate = figure(lines, "bare subscriber rate")
    ratio = figure(lines, "ratio")
    assert ingest_rate > 0
    assert bare_rate > 0
    assert ratio == pytest.approx(ingest_rate / bare_rate, rel=0.02, abs=0.002)
    assert figure(lines, "ingest cpu") > 0
    assert re.fullmatch(r"goal drain rate >= 20000 offers/s: (met|NOT MET)", lines[-2])
    assert re.fullmatch(r"goal ratio >= 0.5: (met|NOT MET)", lines[-1])

    name = re.search(r"^database: (kooperant_bench_\w+)$", result.stdout, re.MULTILINE)
    assert name is not None, result.stdout
    with psycopg.connect(POSTGRES_ADMIN_DSN) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name.group(1),)
        ).fetchone()
    assert found == (0,)


def test_benchmark_rejects_zero_offers() -> None:
    result = run_script("--offers", "0")

    assert result.returncode == 2
    assert "--offers must be at least 1, got 0" in result.stderr


def test_benchmark_rejects_more_members_than_offers() -> None:
    result = run_script("--offers", "10", "--members", "11")

    assert result.returncode == 2
    assert "--members must be 1 to --offers (10), got 11" in result.stderr


def test_benchmark_rejects_sqlite_url() -> None:
    result = run_script("--database-url", "sqlite:///bench.db")

    assert result.returncode == 2
    assert "--database-url must be a postgresql:// URL, got 'sqlite:///bench.db'" in result.stderr
