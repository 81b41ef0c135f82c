"""Tests of bench/ingest.py with a tiny cluster and short steps, so that the script keeps running.

The rates are not checked against the goals because they depend on the machine. The tests check
that the raw phase delivered every message, that every published offer is in the database, the
form of the last lines, and that the script drops its database and rejects bad options.
"""

from __future__ import annotations

import re
from functools import partial

import psycopg
import pytest

from tests.conftest import POSTGRES_ADMIN_DSN, REPO_ROOT
from tests.support.bench_scripts import needs_mosquitto, run_bench_script

SCRIPT = REPO_ROOT / "bench" / "ingest.py"
TINY = (
    "--members", "6",
    "--resources", "3",
    "--publishers", "2",
    "--raw-messages", "400",
    "--warm-up-offers", "10",
    "--rates", "10,20",
    "--step-seconds", "2",
    "--drain-seconds", "8",
    "--time-limit", "60",
    "--drain-limit", "30",
)  # fmt: skip


run_script = partial(run_bench_script, SCRIPT)


def value(lines: list[str], prefix: str) -> str:
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, f"expected one line starting with {prefix!r} in:\n" + "\n".join(lines)
    return found[0][len(prefix) :].strip()


@needs_mosquitto
def test_benchmark_tiny_run(postgres_url: str) -> None:
    result = run_script("--database-url", postgres_url, *TINY)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"raw delivery rate: \d+ msgs/s", lines[-5]), lines[-5]
    assert re.fullmatch(r"sustained stored rate: \d+ offers/s", lines[-4]), lines[-4]
    assert re.fullmatch(r"ratio stored/raw: \d+\.\d{3}", lines[-3]), lines[-3]
    assert re.fullmatch(r"goal stored >= 20000 offers/s: (met|NOT MET)", lines[-2]), lines[-2]
    assert re.fullmatch(r"goal ratio >= 0.5: (met|NOT MET)", lines[-1]), lines[-1]
    assert lines[-6].startswith("top sustained step: ")
    assert lines[-7] == "loss: 0 offers lost"
    assert re.fullmatch(
        r"highest stored rate of a step: \d+ offers/s \(step (10|20)/s, (not )?sustained\)",
        lines[-8],
    ), lines[-8]

    raw = re.fullmatch(
        r"raw: published (\d+) at \d+ msgs/s, bare subscriber received (\d+) at \d+ msgs/s",
        lines[[line.startswith("raw: published") for line in lines].index(True)],
    )
    assert raw is not None
    assert int(raw.group(1)) == 400
    assert int(raw.group(2)) == 400

    published = re.fullmatch(r"(\d+) \(0 without PUBACK\)", value(lines, "published offers:"))
    assert published is not None, value(lines, "published offers:")
    count = int(published.group(1))
    assert count >= 10 + 10 * 2 * 0.9
    assert value(lines, "offer_history rows:") == f"{count}, distinct message ids {count}"
    assert value(lines, "missing offers:") == "0"
    assert value(lines, "rejected messages:") == "0 in the database, 0 counted by ingest"
    assert any(line.startswith("warm-up: ingest stored 10 offers in ") for line in lines)
    assert any(line.startswith("step 10/s: offered ") for line in lines)
    assert any(line.startswith("step 10/s cpu ingest: ") for line in lines)

    raw_rate = int(lines[-5].split()[3])
    stored_rate = int(lines[-4].split()[3])
    assert stored_rate <= 20 * 1.1
    assert float(lines[-3].split()[2]) == pytest.approx(stored_rate / raw_rate, abs=0.002)


@needs_mosquitto
def test_benchmark_drops_its_database(postgres_url: str) -> None:
    result = run_script("--database-url", postgres_url, *TINY, "--rates", "10")

    assert result.returncode == 0, result.stdout + result.stderr
    name = re.search(r"^database: (kooperant_bench_\w+)$", result.stdout, re.MULTILINE)
    assert name is not None, result.stdout
    with psycopg.connect(POSTGRES_ADMIN_DSN) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name.group(1),)
        ).fetchone()
    assert found == (0,)


@pytest.mark.parametrize(
    ("option", "text", "message"),
    [
        ("--rates", "10,x", "--rates '10,x' is not a comma-separated list of integers"),
        ("--rates", "20,10", "--rates '20,10' must be positive integers in increasing order"),
        ("--step-seconds", "0", "--step-seconds 0 must be positive"),
        ("--inflight", "70000", "--inflight 70000 exceeds 65535"),
        ("--database-url", "sqlite:///x.db", "--database-url must be a PostgreSQL URL"),
    ],
)
def test_benchmark_rejects_bad_option(option: str, text: str, message: str) -> None:
    result = run_script(option, text)

    assert result.returncode == 2
    assert message in result.stderr
