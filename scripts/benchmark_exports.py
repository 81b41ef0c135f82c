#!/usr/bin/env python3
"""Measure the time and memory each export adapter needs to parse a large generated export.

For every format (or those given with ``--only``) the script writes a generated export of about
``--size-mb`` MB, shaped like the fixtures under ``tests/fixtures``. Then a fresh child process
per format parses it through the adapter's own ``parse`` (``scripts/export_benchmark/measure.py``),
so the figures of one format never include another's memory. The table lists the file size, the
records written, the observations returned, the seconds of one parse and the growth of the
maximum resident set size over the child's baseline after its imports. With ``--tracemalloc`` it
also lists the tracemalloc peak of a second parse. XLSX files are written at
most ``--xlsx-size-mb``, because openpyxl writes and reads them much slower than CSV is read: a
20 MB plan took 61 s to write and 74 s to parse (see docs/benchmarks/exports.md).

Run from the repository root: ``python scripts/benchmark_exports.py [--only stock]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from export_benchmark.formats import FORMATS, XLSX_FORMATS, ExportFormat

MEASURE_SCRIPT = Path(__file__).resolve().parent / "export_benchmark" / "measure.py"
COLUMNS = (
    "format",
    "file MB",
    "records",
    "observations",
    "seconds",
    "MB/s",
    "RSS growth MB",
    "peak RSS MB",
    "tracemalloc MB",
)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100, help="size of each file in MB")
    parser.add_argument(
        "--xlsx-size-mb",
        type=float,
        default=20,
        help="maximum size of XLSX files in MB (default 20, because XLSX is slow to write)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(FORMATS),
        metavar="FORMAT",
        help=f"measure only this format; repeat for more. One of: {', '.join(FORMATS)}",
    )
    parser.add_argument(
        "--items",
        type=int,
        default=5000,
        help="distinct item codes (and people in the IT team calendar) in each file",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="folder for the generated files, kept and reused while size and items match",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder of the generated files"
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also parse each file a second time under tracemalloc and print its peak",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="parse with the read progress reported, as 'kooperant agent preview' does",
    )
    return parser.parse_args()


def sample_file(
    export_format: ExportFormat, folder: Path, size_mb: float, items: int
) -> tuple[Path, int]:
    """Return the generated file of ``export_format`` and its record count, writing it if needed.

    A file in ``folder`` is reused when the JSON file next to it records the same size and items.
    """
    path = folder / export_format.file_name
    description = folder / f"{export_format.file_name}.json"
    expected = {"size_mb": size_mb, "items": items}
    if path.exists() and description.exists():
        recorded = json.loads(description.read_text(encoding="utf-8"))
        if {key: recorded.get(key) for key in expected} == expected:
            return path, int(recorded["records"])

    print(f"writing {path} ({size_mb:g} MB)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    records = export_format.writer(path, int(size_mb * 1e6), items)
    seconds = time.perf_counter() - started
    print(f"  written in {seconds:.1f} s", file=sys.stderr, flush=True)
    description.write_text(json.dumps({**expected, "records": records}), encoding="utf-8")
    return path, records


def measure_in_child(
    format_name: str, path: Path, *, traced: bool, progress: bool = False
) -> dict[str, Any]:
    """Run ``measure.py`` in a new interpreter and return the figures it prints."""
    command = [sys.executable, str(MEASURE_SCRIPT), format_name, str(path)]
    if traced:
        command.append("--tracemalloc")
    if progress:
        command.append("--progress")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise RuntimeError(
            f"{format_name}: measuring failed, measure.py exited with status "
            f"{result.returncode}; its error output is above"
        )
    figures: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return figures


def table_row(format_name: str, path: Path, records: int, figures: dict[str, Any]) -> list[str]:
    size_mb = path.stat().st_size / 1e6
    traced = figures["tracemalloc_peak"]
    return [
        format_name,
        f"{size_mb:.1f}",
        f"{records:,}",
        f"{figures['observations']:,}",
        f"{figures['seconds']:.1f}",
        f"{size_mb / figures['seconds']:.1f}",
        f"{figures['rss_growth'] / 1e6:.1f}",
        f"{figures['peak_rss'] / 1e6:.1f}",
        "-" if traced is None else f"{traced / 1e6:.1f}",
    ]


def machine_description() -> str:
    """Return the CPU model, core count, Python version and date, for the benchmark record."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count()
    return (
        f"{model}, {cores} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def print_table(rows: list[list[str]]) -> None:
    widths = [
        max(len(row[index]) for row in [list(COLUMNS), *rows]) for index in range(len(COLUMNS))
    ]
    for row in [list(COLUMNS), *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def run(arguments: argparse.Namespace, folder: Path) -> int:
    """Write and measure each selected format; return the exit status (1 if any format failed)."""
    status = 0
    rows: list[list[str]] = []
    for name in arguments.only or list(FORMATS):
        size_mb = arguments.size_mb
        if name in XLSX_FORMATS:
            size_mb = min(size_mb, arguments.xlsx_size_mb)
        path, records = sample_file(FORMATS[name], folder, size_mb, arguments.items)
        try:
            figures = measure_in_child(
                name, path, traced=arguments.tracemalloc, progress=arguments.progress
            )
        except RuntimeError as error:
            print(error, file=sys.stderr)
            status = 1
            continue
        rows.append(table_row(name, path, records, figures))

    print(machine_description())
    print_table(rows)
    return status


def main() -> int:
    arguments = parse_arguments()
    if arguments.dir is not None:
        arguments.dir.mkdir(parents=True, exist_ok=True)
        return run(arguments, arguments.dir)
    if arguments.keep:
        folder = Path(tempfile.mkdtemp(prefix="kooperant-exports-"))
        print(f"generated files are kept in {folder}", file=sys.stderr)
        return run(arguments, folder)
    with tempfile.TemporaryDirectory(prefix="kooperant-exports-") as name:
        return run(arguments, Path(name))


if __name__ == "__main__":
    sys.exit(main())
