"""Tests of bench/search.py on a tiny cluster, so that the script keeps running.

The latencies are not checked against the goals because they depend on the machine. The tests
check the data the script loads, the lines it prints, the EXPLAIN file and that it drops its
database.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import partial
from pathlib import Path

import psycopg

from server.regions import VOIVODESHIP_CODES
from tests.conftest import POSTGRES_ADMIN_DSN, REPO_ROOT
from tests.support.bench_scripts import run_bench_script

SCRIPT = REPO_ROOT / "bench" / "search.py"
SUMMARY = re.compile(
    r"n=(\d+)  p50 ([\d.]+) ms  p95 ([\d.]+) ms  max ([\d.]+) ms  "
    r"goal p95 < (\d+) ms: (met|NOT MET)$"
)


run_script = partial(run_bench_script, SCRIPT)


def table_rows(output: str) -> dict[str, int]:
    """Return the row counts of the size table the script prints after loading."""
    rows = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) == 3 and re.fullmatch(r"[\d,]+", cells[1]):
            rows[cells[0]] = int(cells[1].replace(",", ""))
    return rows


def summary(line: str) -> tuple[int, float, float, float, int]:
    match = SUMMARY.search(line)
    assert match is not None, line
    count, p50, p95, largest, goal, _ = match.groups()
    return int(count), float(p50), float(p95), float(largest), int(goal)


def test_benchmark_tiny_cluster(postgres_url: str, tmp_path: Path) -> None:
    explain_file = tmp_path / "explain.txt"
    result = run_script(
        "--database-url", postgres_url,
        "--members", "5",
        "--offers", "3",
        "--days", "2",
        "--requests", "20",
        "--page-requests", "4",
        "--explain", str(explain_file),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = table_rows(result.stdout)
    assert rows["members"] == 5
    assert rows["member_profiles"] == 5
    assert rows["resources"] == 15
    assert rows["offer_history"] == 5 * 3 * 2 * 4
    assert rows["resource_capabilities"] >= 15

    api_line, page_line = lines[-2], lines[-1]
    assert api_line.startswith("API  GET /api/v1/resources  ")
    assert page_line.startswith("page GET /  ")
    api = summary(api_line)
    assert api[0] == 20
    assert api[1] <= api[2] <= api[3]
    assert api[4] == 100
    page = summary(page_line)
    assert page[0] == 4
    assert page[1] <= page[2] <= page[3]
    assert page[4] == 300
    assert re.match(r"machine: \d+ CPUs \(.+\), PostgreSQL \d+", lines[-3]), lines[-3]
    assert lines[-4].startswith("data: 5 members x 3 offers, 2 days of history")

    # Every search of the mix runs against the current API, region and sort included.
    assert [line for line in lines if line.startswith("skipped ")] == []

    plans = explain_file.read_text(encoding="utf-8")
    assert "### first page: 200" in plans
    assert "Execution Time" in plans


def test_benchmark_drops_its_database(postgres_url: str) -> None:
    result = run_script(
        "--database-url", postgres_url,
        "--members", "2",
        "--offers", "1",
        "--days", "1",
        "--requests", "2",
        "--page-requests", "1",
        "--warmup", "1",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    name = re.search(r"^database: (kooperant_bench_\w+)$", result.stdout, re.MULTILINE)
    assert name is not None, result.stdout
    with psycopg.connect(POSTGRES_ADMIN_DSN) as connection:
        found = connection.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", (name.group(1),)
        ).fetchone()
    assert found == (0,)


def test_benchmark_rejects_zero_members() -> None:
    result = run_script("--members", "0")

    assert result.returncode == 2
    assert "argument --members: expected a whole number of at least 1, got '0'" in result.stderr


def test_benchmark_rejects_text_as_members() -> None:
    result = run_script("--members", "many")

    assert result.returncode == 2
    assert "argument --members: expected a whole number of at least 1, got 'many'" in result.stderr


def test_benchmark_rejects_sqlite_url() -> None:
    result = run_script("--database-url", "sqlite:///bench.db")

    assert result.returncode == 2
    assert "--database-url must be a PostgreSQL URL, got 'sqlite:///bench.db'" in result.stderr


def test_benchmark_regions_are_voivodeship_codes() -> None:
    spec = importlib.util.spec_from_file_location("search_data", SCRIPT.parent / "search_data.py")
    assert spec is not None and spec.loader is not None
    search_data = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up in sys.modules while being defined.
    sys.modules[spec.name] = search_data
    try:
        spec.loader.exec_module(search_data)
    finally:
        del sys.modules[spec.name]

    assert set(search_data.REGIONS) == VOIVODESHIP_CODES
