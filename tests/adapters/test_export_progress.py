"""Tests of the read progress of export parses (``adapters.exports.progress``).

A generated stock list of about 4 MB is parsed through the stock adapter, so the reports come
from the same reader and worker thread as in the agent. The other readers (XLSX, JPK_MAG XML and
EDI++) are checked on their fixtures. Throttling and the log lines use a controlled clock.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

import adapters.exports.adapter as export_adapter
from adapters.base import AdapterContext, ConnectionState
from adapters.edi_epp.records import read_lines
from adapters.errors import ExportFormatError
from adapters.exports.progress import (
    ProgressReporter,
    ReadProgress,
    progress_logger,
    reporting,
)
from adapters.exports.tables import TableFormat, read_table
from adapters.jpk_mag.xml_records import read_records
from adapters.stock import StockAdapter, StockSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 12, 7, 8, 20, tzinfo=UTC)
HEADER = "Indeks;Nazwa;Magazyn;Ilość;J.m.;Rezerwa;Cena\r\n"
ROWS = 120_000


class StepClock:
    """A monotonic clock in seconds that moves ``step`` forward after every reading."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.readings = 0

    def __call__(self) -> float:
        moment = self.now
        self.now += self.step
        self.readings += 1
        return moment


def write_stock_list(path: Path, rows: int = ROWS, bad_row: int | None = None) -> Path:
    """Write a stock list of ``rows`` rows (about 45 bytes each), invalid at ``bad_row``."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write(HEADER)
        for number in range(rows):
            amount = "12,5x" if number == bad_row else "12,5"
            stream.write(f"IT-{number % 500:04d};Blacha;MAG-{number % 7};{amount};kg;;6,85\r\n")
    return path


@pytest.fixture(scope="module")
def stock_list(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stock_list(tmp_path_factory.mktemp("progress") / "stany.csv")


def make_adapter(
    folder: Path, read_progress: export_adapter.ReadProgressCallback | None
) -> StockAdapter:
    context = AdapterContext(
        member="test-member-progress",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=folder,
        notify_changed=lambda: None,
        clock=lambda: NOW,
        read_progress=read_progress,
    )
    settings = StockSettings.model_validate({"path": "stany.csv", "stable_seconds": 0})
    return StockAdapter("stany", settings, context)


def check_reports(reports: list[ReadProgress], path: Path) -> None:
    """Check that ``reports`` move forward and end with the whole file."""
    size = path.stat().st_size
    counts = [report.bytes_read for report in reports]
    assert counts == sorted(counts)
    assert {report.path for report in reports} == {path}
    assert {report.total_bytes for report in reports} == {size}
    assert reports[-1].done
    assert reports[-1].bytes_read == size
    assert not any(report.done for report in reports[:-1])


async def test_adapter_reports_large_file(stock_list: Path, tmp_path: Path) -> None:
    path = Path(shutil.copy(stock_list, tmp_path / "stany.csv"))
    reports: list[ReadProgress] = []
    adapter = make_adapter(tmp_path, reports.append)

    await adapter.poll()

    [health] = adapter.health()
    assert health.state is ConnectionState.CONNECTED, health.detail
    check_reports(reports, path)
    # Reports come at most every 0.2 s, and this parse takes a few seconds.
    assert 1 <= len(reports) < 100


def test_reporter_limits_reports_per_interval(stock_list: Path) -> None:
    reports: list[ReadProgress] = []
    # Binary fractions, so that four steps make exactly one interval.
    clock = StepClock(0.0625)
    reporter = ProgressReporter(reports.append, interval_seconds=0.25, clock=clock)

    with reporting(reporter):
        rows = sum(1 for _ in read_table(stock_list, TableFormat()))

    assert rows == ROWS + 1
    check_reports(reports, stock_list)
    # The reporter reads the clock once per raw read, 1/16 s apart, so every fourth read is
    # reported. The final report and the reading at the start come on top.
    reads = clock.readings - 2
    assert len(reports) - 1 == reads // 4


def test_no_reporter_reports_nothing(stock_list: Path) -> None:
    rows = sum(1 for _ in read_table(stock_list, TableFormat()))

    assert rows == ROWS + 1


def test_failed_parse_has_no_final_report(tmp_path: Path) -> None:
    path = write_stock_list(tmp_path / "stany.csv", rows=20_000, bad_row=10_000)
    adapter = make_adapter(tmp_path, None)
    reports: list[ReadProgress] = []

    reporter = ProgressReporter(reports.append, interval_seconds=0)
    with reporting(reporter), pytest.raises(ExportFormatError):
        adapter.parse({"path": path})

    assert reports
    assert not any(report.done for report in reports)
    assert reports[-1].bytes_read < path.stat().st_size


def test_xlsx_reports_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "stany.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Indeks", "Nazwa", "Ilość"])
    for number in range(5000):
        sheet.append([f"IT-{number}", "Blacha", number])
    workbook.save(path)
    reports: list[ReadProgress] = []

    with reporting(ProgressReporter(reports.append, interval_seconds=0)):
        rows = list(read_table(path, TableFormat()))

    assert len(rows) == 5001
    assert len(reports) > 1
    check_reports(reports, path)


def test_jpk_mag_reports_whole_file() -> None:
    path = FIXTURES / "jpk_mag" / "magazyn_2026_03.xml"
    reports: list[ReadProgress] = []

    with reporting(ProgressReporter(reports.append, interval_seconds=0)):
        records = list(read_records(path))

    assert records
    check_reports(reports, path)


def test_edi_epp_reports_whole_file() -> None:
    path = FIXTURES / "edi_epp" / "dokumenty.epp"
    reports: list[ReadProgress] = []

    with reporting(ProgressReporter(reports.append, interval_seconds=0)):
        lines = list(read_lines(path, "cp1250"))

    assert lines
    check_reports(reports, path)


@pytest.fixture
def export_info(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="adapters.exports")
    yield caplog


def test_log_lines_every_interval(stock_list: Path, export_info: pytest.LogCaptureFixture) -> None:
    clock = StepClock(1.0)
    log = progress_logger(logging.getLogger("adapters.exports.adapter"), "stany", "stock list")
    reporter = ProgressReporter(log, interval_seconds=10.0, clock=clock)

    with reporting(reporter):
        for _ in read_table(stock_list, TableFormat()):
            pass

    lines = [record.getMessage() for record in export_info.records]
    # One reading of the clock per raw read, a second apart: a line every tenth read. The
    # reading at the start and the final one come on top, and the final one logs nothing.
    reads = clock.readings - 2
    assert len(lines) == reads // 10
    assert lines[0].startswith(f"adapter 'stany': reading the stock list {stock_list}: ")
    assert lines[0].endswith("%)")


async def test_adapter_without_terminal_logs_progress(
    stock_list: Path,
    tmp_path: Path,
    export_info: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The interval is 10 s in the agent; 0 makes every read of this short parse log a line.
    monkeypatch.setattr(export_adapter, "LOG_INTERVAL_SECONDS", 0.0)
    shutil.copy(stock_list, tmp_path / "stany.csv")
    adapter = make_adapter(tmp_path, None)

    await adapter.poll()

    lines = [record.getMessage() for record in export_info.records]
    progress = [line for line in lines if ": reading the stock list " in line]
    assert len(progress) > 10
    assert progress[-1].endswith("(100%)") or progress[-1].endswith("(99%)")
    assert lines[-1].startswith("adapter 'stany': read stock list from ")
