"""Tests of scripts/benchmark_exports.py on small files, so that the script keeps running.

The figures are not checked because they depend on the machine. The tests check that each format
is written, parsed in its child process and reported with every column.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.support.bench_scripts import run_bench_script

SCRIPT = REPO_ROOT / "scripts" / "benchmark_exports.py"
COLUMNS = [
    "format",
    "file MB",
    "records",
    "observations",
    "seconds",
    "MB/s",
    "RSS growth MB",
    "peak RSS MB",
    "tracemalloc MB",
]


run_script = partial(run_bench_script, SCRIPT, timeout=120)


def table_rows(output: str) -> dict[str, list[str]]:
    """Return the table's rows by format, and its header under the key "format"."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("format "))
    rows: dict[str, list[str]] = {}
    for line in lines[start:]:
        cells = [cell for cell in line.split("  ") if cell.strip()]
        rows[cells[0].strip()] = [cell.strip() for cell in cells]
    return rows


def test_benchmark_stock_and_jpk_mag(tmp_path: Path) -> None:
    result = run_script(
        "--size-mb", "1", "--only", "stock", "--only", "jpk_mag", "--dir", str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["format"] == COLUMNS
    assert set(rows) == {"format", "stock", "jpk_mag"}
    for name in ("stock", "jpk_mag"):
        row = dict(zip(COLUMNS, rows[name], strict=True))
        assert 0.9 <= float(row["file MB"]) <= 1.2, row
        assert int(row["observations"].replace(",", "")) > 0, row
        assert float(row["RSS growth MB"]) >= 0, row
        assert row["tracemalloc MB"] == "-", row


def test_benchmark_records_match_file(tmp_path: Path) -> None:
    result = run_script("--size-mb", "1", "--only", "stock", "--dir", str(tmp_path))

    assert result.returncode == 0, result.stderr
    row = dict(zip(COLUMNS, table_rows(result.stdout)["stock"], strict=True))
    lines = (tmp_path / "stany.csv").read_text(encoding="utf-8").splitlines()
    assert int(row["records"].replace(",", "")) == len(lines) - 1


def test_benchmark_tracemalloc_option(tmp_path: Path) -> None:
    result = run_script(
        "--size-mb", "0.2", "--only", "stock", "--tracemalloc", "--dir", str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    row = dict(zip(COLUMNS, table_rows(result.stdout)["stock"], strict=True))
    assert float(row["tracemalloc MB"]) > 0, row


def test_benchmark_unknown_format_rejected() -> None:
    result = run_script("--only", "xls")

    assert result.returncode == 2
    assert "invalid choice: 'xls'" in result.stderr
    assert "stock" in result.stderr
