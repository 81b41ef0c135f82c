"""Tests of the shared export code: sources, encodings, tables, columns and the base adapter."""

from __future__ import annotations

import logging
import os
import re
import tracemalloc
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from pydantic import ValidationError

from adapters.base import (
    AdapterContext,
    AdapterSettings,
    ConnectionState,
    Observation,
    ResourceAmounts,
)
from adapters.errors import ExportFormatError
from adapters.exports.adapter import ExportAdapter, ExportSettings
from adapters.exports.columns import ColumnLayout
from adapters.exports.sources import ExportSource, is_temporary_name
from adapters.exports.tables import TableRow, TableSettings, read_table
from adapters.exports.text_files import detect_encoding
from kooperant.protocol import Amount, ResourceKind

WARSAW = ZoneInfo("Europe/Warsaw")
POLISH_TEXT = "Indeks;Nazwa;Ilość\r\nBL-15;Blacha źółta ęą ż;1 234,5\r\n"


def write_table_settings(path: Path, **values: object) -> TableSettings:
    return TableSettings.model_validate({"path": str(path), **values})


class FakeClock:
    """A wall clock for the adapter context that moves only when a test advances it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Tick:
    """A monotonic clock for ``ExportSource`` that a test sets by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("stany.csv", False),
        ("stany.csv.tmp", True),
        ("JPK_MAG.xml.part", True),
        ("~$plan.xlsx", True),
        (".plan.csv.swp", True),
        ("plan.csv~", True),
        ("plan.CRDOWNLOAD", True),
    ],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert is_temporary_name(name) is temporary


def test_source_waits_until_file_stable(tmp_path: Path) -> None:
    clock = Tick()
    path = tmp_path / "plan.csv"
    source = ExportSource(path, "*", stable_seconds=2, clock=clock)

    assert source.poll() is None
    assert source.current_file is None

    path.write_text("a;b\r\n", encoding="utf-8")
    assert source.poll() is None
    clock.now = 1.0
    with path.open("a", encoding="utf-8") as handle:
        handle.write("1;2\r\n")
    assert source.poll() is None  # grew, so the wait starts again
    clock.now = 2.5
    assert source.poll() is None
    clock.now = 3.1
    version = source.poll()

    assert version is not None
    assert version.size == path.stat().st_size
    assert source.current_file == path
    assert source.poll() is None  # the same version is not returned twice


def test_source_takes_newest_file_in_folder(tmp_path: Path) -> None:
    clock = Tick()
    older = tmp_path / "stany_20261203.csv"
    newer = tmp_path / "stany_20261204.csv"
    older.write_text("old", encoding="utf-8")
    newer.write_text("new", encoding="utf-8")
    os.utime(older, ns=(1_000_000_000, 1_000_000_000))
    os.utime(newer, ns=(2_000_000_000, 2_000_000_000))
    (tmp_path / "notes.txt").write_text("not an export", encoding="utf-8")
    os.utime(tmp_path / "notes.txt", ns=(3_000_000_000, 3_000_000_000))
    source = ExportSource(tmp_path, "*.CSV", stable_seconds=0, clock=clock)

    assert source.poll() is not None
    assert source.current_file == newer


def test_source_ignores_file_until_renamed(tmp_path: Path) -> None:
    clock = Tick()
    source = ExportSource(tmp_path, "*.xml", stable_seconds=0, clock=clock)
    partial = tmp_path / "JPK_MAG.xml.part"
    partial.write_text("<JPK>", encoding="utf-8")

    assert source.poll() is None
    assert source.current_file is None

    partial.rename(tmp_path / "JPK_MAG.xml")
    assert source.poll() is not None
    assert source.current_file == tmp_path / "JPK_MAG.xml"


def test_source_empty_folder(tmp_path: Path) -> None:
    source = ExportSource(tmp_path, "*.epp", stable_seconds=0, clock=Tick())

    assert source.poll() is None
    assert source.current_file is None


def test_settings_reject_pattern_with_folder() -> None:
    with pytest.raises(ValidationError, match="without a folder"):
        ExportSettings.model_validate({"path": "eksport", "pattern": "sub/*.csv"})


def test_settings_reject_unknown_key() -> None:
    with pytest.raises(ValidationError, match="stale_after"):
        ExportSettings.model_validate({"path": "eksport", "stale_after": 3})


# --- encodings and tables --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        (POLISH_TEXT.encode("cp1250"), "cp1250"),
        (POLISH_TEXT.encode("utf-8"), "utf-8"),
        (POLISH_TEXT.encode("utf-8-sig"), "utf-8-sig"),
    ],
)
def test_encoding_detected(tmp_path: Path, data: bytes, codec: str) -> None:
    path = tmp_path / "stany.csv"
    path.write_bytes(data)

    assert detect_encoding(path, "auto") == codec
    rows = list(read_table(path, write_table_settings(path)))
    assert rows[1].cells == ("BL-15", "Blacha źółta ęą ż", "1 234,5")


def test_encoding_utf16_rejected(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    path.write_bytes(POLISH_TEXT.encode("utf-16"))

    with pytest.raises(ExportFormatError, match="UTF-16"):
        detect_encoding(path, "auto")


def test_encoding_wrong_setting_names_line(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    path.write_bytes(POLISH_TEXT.encode("cp1250"))

    with pytest.raises(ExportFormatError) as caught:
        detect_encoding(path, "utf-8")

    assert caught.value.line == 1  # the "ś" of "Ilość" in the header
    assert "byte 0x9c at offset 16 is not valid utf-8" in str(caught.value)


def test_encoding_nul_byte_rejected(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    path.write_bytes(b"a;b\r\n1;\x002\r\n")

    with pytest.raises(ExportFormatError, match="NUL byte at offset 7") as caught:
        detect_encoding(path, "auto")
    assert caught.value.line == 2


def test_csv_streamed_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "duzy.csv"
    line = "BL-15;Blacha stalowa DC01 1,5 mm – łódź;1 234,5\r\n".encode("cp1250")
    with path.open("wb") as handle:
        handle.write("Indeks;Nazwa;Ilość\r\n".encode("cp1250"))
        for _ in range(20):
            handle.write(line * 10_000)
    size = path.stat().st_size

    tracemalloc.start()
    try:
        count = sum(1 for _ in read_table(path, write_table_settings(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 200_001
    assert size > 9_000_000
    assert peak < 3_000_000  # a few chunks, whatever the size of the file


def test_xlsx_rows_keep_types(tmp_path: Path) -> None:
    path = tmp_path / "plan.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Plan"
    sheet.append(["Zlecenie", "Początek", "Ilość"])
    sheet.append(["ZP/1 żuraw", datetime(2026, 3, 2, 6, 0), 12.5])
    sheet.append([None, None, None])
    sheet.append(["ZP/2 łożysko", "03.03.2026", 3])
    workbook.save(path)

    rows = list(read_table(path, write_table_settings(path)))

    assert [row.line for row in rows] == [1, 2, 4]
    assert rows[1].cells == ("ZP/1 żuraw", datetime(2026, 3, 2, 6, 0), 12.5)
    assert rows[2].cells == ("ZP/2 łożysko", "03.03.2026", 3)


def test_xlsx_missing_sheet_named(tmp_path: Path) -> None:
    path = tmp_path / "plan.xlsx"
    Workbook().save(path)

    with pytest.raises(ExportFormatError, match="worksheet 'Plan' not found"):
        list(read_table(path, write_table_settings(path, sheet="Plan")))


def test_xlsx_damaged_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plan.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")

    with pytest.raises(ExportFormatError, match="not a readable XLSX workbook"):
        list(read_table(path, write_table_settings(path)))


def test_old_excel_format_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plan.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")

    with pytest.raises(ExportFormatError, match=r"save the file as \.xlsx or CSV"):
        read_table(path, write_table_settings(path))


# --- columns ---------------------------------------------------------------------------------


class StockColumns(AdapterSettings):
    item: str = "Indeks"
    quantity: str = "Ilość"
    delivered: str = "Data dostawy"


def layout_for(tmp_path: Path, text: str) -> tuple[ColumnLayout, list[TableRow]]:
    path = tmp_path / "stany.csv"
    path.write_text(text, encoding="utf-8")
    rows = list(read_table(path, write_table_settings(path)))
    layout = ColumnLayout(rows[0], path, StockColumns(), optional=("delivered",))
    return layout, rows[1:]


def test_columns_read_values(tmp_path: Path) -> None:
    layout, rows = layout_for(
        tmp_path, " INDEKS ;ilość;Data dostawy\r\nBL-15;1 234,5;04.12.2026\r\n"
    )
    [row] = rows

    assert layout.text(row, "item", "item code") == "BL-15"
    assert layout.number(row, "quantity", "quantity") == 1234.5
    delivered = layout.date(row, "delivered", "delivery date", ("%d.%m.%Y",))
    assert delivered == date(2026, 12, 4)


def test_columns_missing_column_named(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        layout_for(tmp_path, "Kod;Ilość\r\nBL-15;3\r\n")

    message = str(caught.value)
    assert "missing column 'Indeks'" in message
    assert "'Kod'" in message
    assert "columns.item" in message
    assert caught.value.line == 1


def test_columns_optional_column_absent(tmp_path: Path) -> None:
    layout, _ = layout_for(tmp_path, "Indeks;Ilość\r\nBL-15;3\r\n")

    assert not layout.has("delivered")


def test_columns_bad_number_names_cell(tmp_path: Path) -> None:
    layout, rows = layout_for(tmp_path, "Indeks;Ilość\r\nBL-15;3\r\nBL-20;dużo\r\n")

    with pytest.raises(ExportFormatError) as caught:
        layout.number(rows[1], "quantity", "quantity")

    assert caught.value.line == 3
    assert caught.value.column == "Ilość"
    assert "'dużo'" in str(caught.value)


def test_columns_bad_date_lists_formats(tmp_path: Path) -> None:
    layout, rows = layout_for(tmp_path, "Indeks;Ilość;Data dostawy\r\nBL-15;3;31.02.2026\r\n")

    with pytest.raises(ExportFormatError, match=re.escape("'%d.%m.%Y'")) as caught:
        layout.date(rows[0], "delivered", "delivery date", ("%d.%m.%Y",))
    assert "31.02.2026" in str(caught.value)


def test_columns_ambiguous_dot_rejected(tmp_path: Path) -> None:
    layout, rows = layout_for(tmp_path, "Indeks;Ilość\r\nBL-15;12.500\r\n")

    with pytest.raises(ExportFormatError) as caught:
        layout.number(rows[0], "quantity", "quantity")

    assert caught.value.line == 2
    assert "ambiguous quantity '12.500'" in str(caught.value)
    assert "(1234 or 1 234)" in str(caught.value)


def test_columns_negative_number_rejected(tmp_path: Path) -> None:
    layout, rows = layout_for(tmp_path, "Indeks;Ilość\r\nBL-15;-3\r\n")

    with pytest.raises(ExportFormatError, match="must be at least 0"):
        layout.number(rows[0], "quantity", "quantity", minimum=0)


# --- the base adapter ------------------------------------------------------------------------


class CountsAdapter(ExportAdapter[TableSettings]):
    """A minimal export adapter: one resource whose amount is the sum of the ``Ilość`` column."""

    settings_model = TableSettings
    export_description = "count list"
    withheld_until_read = frozenset({ResourceKind.STORAGE})

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        path = files["path"]
        rows = read_table(path, self.settings)
        header = next(rows, None)
        if header is None:
            raise ExportFormatError(path, "the file is empty; expected a header row")
        layout = ColumnLayout(header, path, StockColumns(), optional=("item", "delivered"))
        total = sum(layout.number(row, "quantity", "quantity") for row in rows)
        return [ResourceAmounts("magazyn-a", ResourceKind.STORAGE, (Amount("n", total, "pcs"),))]


def make_counts_adapter(
    tmp_path: Path,
    clock: FakeClock,
    adapter_class: type[CountsAdapter] = CountsAdapter,
    **values: object,
) -> CountsAdapter:
    context = AdapterContext(
        member="test-member",
        timezone=WARSAW,
        config_dir=tmp_path,
        notify_changed=lambda: None,
        clock=clock,
    )
    settings = TableSettings.model_validate({"path": "ilosci.csv", "stable_seconds": 0, **values})
    return adapter_class("ilosci", settings, context)


def total_of(adapter: CountsAdapter) -> float | None:
    [observation] = adapter.collect()
    assert isinstance(observation, ResourceAmounts)
    return observation.amounts[0].value


async def test_export_adapter_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    adapter = make_counts_adapter(tmp_path, clock)
    path = tmp_path / "ilosci.csv"
    path.write_text("Ilość\r\n2\r\n3,5\r\n", encoding="utf-8")
    await adapter.poll()
    assert total_of(adapter) == 5.5

    path.write_text("Ilość\r\n2\r\ntrzy\r\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert total_of(adapter) == 5.5
    [record] = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert "ilosci.csv:3 (column 'Ilość')" in record.getMessage()
    assert "last count list read stays in use" in record.getMessage()
    [health] = adapter.health()
    assert health.state is ConnectionState.DISCONNECTED
    assert health.errors == {"invalid_exports": 1}
    assert health.detail is not None and "'trzy'" in health.detail


async def test_export_adapter_withholds_until_read(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    adapter = make_counts_adapter(tmp_path, clock)

    await adapter.poll()

    assert adapter.collect() == []
    reason = adapter.withheld_kinds()[ResourceKind.STORAGE]
    assert reason.endswith("ilosci.csv not read: the file does not exist")
    assert adapter.health()[0].errors == {"missing": 1}

    (tmp_path / "ilosci.csv").write_text("Ilość\r\n7\r\n", encoding="utf-8")
    await adapter.poll()

    assert adapter.withheld_kinds() == {}
    assert total_of(adapter) == 7
    assert adapter.health()[0].state is ConnectionState.CONNECTED


async def test_export_adapter_missing_then_back(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    adapter = make_counts_adapter(tmp_path, clock)
    path = tmp_path / "ilosci.csv"
    path.write_text("Ilość\r\n7\r\n", encoding="utf-8")
    await adapter.poll()
    moved = path.rename(tmp_path / "ilosci.bak")

    await adapter.poll()
    assert adapter.health()[0].state is ConnectionState.DISCONNECTED
    assert total_of(adapter) == 7

    moved.rename(path)
    await adapter.poll()
    assert adapter.health()[0].state is ConnectionState.CONNECTED
    assert adapter.health()[0].detail is None


async def test_export_adapter_marks_stale(tmp_path: Path) -> None:
    exported = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    clock = FakeClock(exported + timedelta(hours=1))
    adapter = make_counts_adapter(tmp_path, clock, stale_after_hours=24)
    path = tmp_path / "ilosci.csv"
    path.write_text("Ilość\r\n7\r\n", encoding="utf-8")
    os.utime(path, (exported.timestamp(), exported.timestamp()))
    await adapter.poll()

    assert adapter.health()[0].last_data == exported
    assert not adapter.health()[0].stale

    clock.advance(timedelta(hours=24))
    assert adapter.health()[0].stale
    assert total_of(adapter) == 7  # stale data stays in use


async def test_export_adapter_empty_file(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    adapter = make_counts_adapter(tmp_path, clock)
    (tmp_path / "ilosci.csv").write_bytes(b"")

    await adapter.poll()

    assert adapter.collect() == []
    detail = adapter.health()[0].detail
    assert detail is not None and "the file is empty" in detail


class BrokenParserAdapter(CountsAdapter):
    """A parser with a bug: it raises ``KeyError`` on the first read and works afterwards."""

    calls = 0

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        self.calls += 1
        if self.calls == 1:
            raise KeyError("column")
        return super().parse(files)


async def test_export_adapter_survives_parser_bug(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    adapter = make_counts_adapter(tmp_path, clock, BrokenParserAdapter)
    path = tmp_path / "ilosci.csv"
    path.write_text("Ilość\r\n7\r\n", encoding="utf-8")

    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()

    assert adapter.collect() == []
    [record] = caplog.records
    assert record.exc_info is not None
    [health] = adapter.health()
    assert health.errors == {"parser_bugs": 1}
    assert health.detail == "unexpected KeyError: 'column'"

    path.write_text("Ilość\r\n8\r\n", encoding="utf-8")
    await adapter.poll()
    assert total_of(adapter) == 8


class UnreadableAdapter(CountsAdapter):
    """Fails as reading a file without read permission fails (tests run as root, who can)."""

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        raise PermissionError(13, "Permission denied", str(files["path"]))


async def test_export_adapter_unreadable_file(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 12, 4, 8, 0, tzinfo=UTC))
    adapter = make_counts_adapter(tmp_path, clock, UnreadableAdapter)
    path = tmp_path / "ilosci.csv"
    path.write_text("Ilość\r\n7\r\n", encoding="utf-8")

    await adapter.poll()

    [health] = adapter.health()
    assert health.errors == {"io": 1}
    assert health.detail == (
        f"cannot read {path}: Permission denied; give the user the agent runs as read access to it"
    )


def test_export_source_name_too_long_raises(tmp_path: Path) -> None:
    source = ExportSource(tmp_path / ("d" * 300) / "stany.csv", "*", stable_seconds=0)

    with pytest.raises(OSError) as caught:
        source.poll()

    assert caught.value.strerror == "File name too long"
