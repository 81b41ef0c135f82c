"""Child process of ``scripts/benchmark_exports.py``: parse one file and print its figures as JSON.

Usage: ``python scripts/export_benchmark/measure.py FORMAT FILE [--tracemalloc] [--progress]``.
The adapter is imported and built first, and the maximum resident set size (``ru_maxrss``) at
that point is the baseline. One ``parse`` is timed, and the growth of ``ru_maxrss`` over the
baseline is the memory the parse needed. With ``--tracemalloc`` a second parse runs under
tracemalloc, which slows it several times, so it is neither timed nor counted in the RSS figure.
With ``--progress`` the parse reports how much of the file it has read to a callback that only
counts the updates, as ``ExportAdapter`` does for ``kooperant agent preview``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from adapters.base import AdapterContext
from adapters.exports.adapter import ExportAdapter
from adapters.exports.progress import ProgressReporter, ReadProgress, reporting
from export_benchmark.formats import FORMATS, XLSX_FORMATS

# The it_team calendar counts free days from today, so the clock is fixed to the generated dates.
CLOCK = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def build_adapter(format_name: str, path: Path) -> ExportAdapter[Any]:
    export_format = FORMATS[format_name]
    module_name, class_name = export_format.adapter.split(":")
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    settings = adapter_class.settings_model.model_validate({"path": path, **export_format.settings})
    context = AdapterContext(
        member="benchmark",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=path.parent,
        notify_changed=lambda: None,
        clock=lambda: CLOCK,
    )
    adapter: ExportAdapter[Any] = adapter_class("benchmark", settings, context)
    return adapter


def max_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(format_name: str, path: Path, *, traced: bool, progress: bool) -> dict[str, Any]:
    """Parse ``path`` as ``format_name`` and return time, observation count and memory figures."""
    if format_name in XLSX_FORMATS:
        import openpyxl  # noqa: F401  # imported lazily by the adapter; kept out of the figure

    adapter = build_adapter(format_name, path)
    gc.collect()
    baseline = max_rss_bytes()

    updates: list[ReadProgress] = []
    reporter = ProgressReporter(updates.append) if progress else None
    started = time.perf_counter()
    with reporting(reporter):
        observations = adapter.parse({"path": path})
    seconds = time.perf_counter() - started
    peak = max_rss_bytes()
    figures: dict[str, Any] = {
        "observations": len(observations),
        "seconds": seconds,
        "baseline_rss": baseline,
        "rss_growth": peak - baseline,
        "peak_rss": peak,
        "tracemalloc_peak": None,
        "progress_updates": len(updates),
    }

    if traced:
        del observations
        gc.collect()
        tracemalloc.start()
        adapter.parse({"path": path})
        figures["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=sorted(FORMATS))
    parser.add_argument("file", type=Path)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--progress", action="store_true")
    arguments = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = measure(
        arguments.format, arguments.file, traced=arguments.tracemalloc, progress=arguments.progress
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
