"""Tests of the schedule adapter on XLSX workbooks, export folders and large or truncated files."""

from __future__ import annotations

import logging
import os
import tomllib
import tracemalloc
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from adapters.base import AdapterContext, ScheduledWork, WorkOrder
from adapters.errors import ExportFormatError
from adapters.schedule import ScheduleAdapter, ScheduleSettings, read_schedule
from kooperant.intervals import Interval
from kooperant.protocol import ResourceKind

REPO_ROOT = Path(__file__).resolve().parents[2]
WARSAW = ZoneInfo("Europe/Warsaw")
MACHINES = {"FREZ-01": "cnc-5ax-01", "LASER-02": "laser-02"}
HEADER = ["Zlecenie", "Maszyna", "Początek", "Koniec", "Uwagi"]
PLAN_ROWS: list[list[object]] = [
    HEADER,
    # Date cells, as a planner types them into Excel.
    [
        "ZP/2026/0501 łożysko ślizgowe",
        "FREZ-01",
        datetime(2026, 12, 7, 6, 0),
        datetime(2026, 12, 7, 14, 30),
        "pilne – żółta karta",
    ],
    # Text dates in the Polish format, as an ERP writes them into a text column.
    ["ZP/2026/0502 źrebię", "LASER-02", "08.12.2026 22:00", "09.12.2026 06:00", None],
    # A numeric order number and a date without a time.
    [503, "FREZ-01", "2026-12-09", datetime(2026, 12, 9, 12, 0), "ąęłóśźż"],
]


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def order(order_id: str, start: datetime, end: datetime) -> WorkOrder:
    return WorkOrder(order_id, Interval(start, end))


# PLAN_ROWS read with MACHINES. December is in winter time (CET, UTC+1).
EXPECTED_PLAN = [
    ScheduledWork(
        "cnc-5ax-01",
        (
            order("ZP/2026/0501 łożysko ślizgowe", utc(2026, 12, 7, 5), utc(2026, 12, 7, 13, 30)),
            order("503", utc(2026, 12, 8, 23), utc(2026, 12, 9, 11)),
        ),
    ),
    ScheduledWork(
        "laser-02",
        (order("ZP/2026/0502 źrebię", utc(2026, 12, 8, 21), utc(2026, 12, 9, 5)),),
    ),
]


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Plan") -> Path:
    workbook = Workbook()
    worksheet = workbook.active
    assert worksheet is not None
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    workbook.save(path)
    return path


def settings_for(path: Path, **overrides: object) -> ScheduleSettings:
    values: dict[str, object] = {"path": str(path), "machines": MACHINES}
    values.update(overrides)
    return ScheduleSettings.model_validate(values)


def make_adapter(tmp_path: Path, **overrides: object) -> tuple[ScheduleAdapter, list[int]]:
    notifications: list[int] = []
    context = AdapterContext(
        member="test-schedule-xlsx",
        timezone=WARSAW,
        config_dir=tmp_path,
        notify_changed=lambda: notifications.append(1),
        clock=lambda: datetime.now(UTC),
    )
    values: dict[str, object] = {"path": "plan.xlsx", "machines": MACHINES, "stable_seconds": 0}
    values.update(overrides)
    settings = ScheduleSettings.model_validate(values)
    return ScheduleAdapter("plan", settings, context), notifications


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


# --- XLSX ----------------------------------------------------------------------------------------


def test_xlsx_date_cells_and_text_dates(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "plan.xlsx", PLAN_ROWS)

    schedule = read_schedule(path, settings_for(path), WARSAW)

    assert schedule == EXPECTED_PLAN


def test_xlsx_hours_number_cell(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Zlecenie", "Maszyna", "Początek", "Godziny"],
        ["ZP/1 wałek", "FREZ-01", datetime(2026, 12, 7, 6, 0), 2.5],
        ["ZP/2 tuleja", "FREZ-01", datetime(2026, 12, 7, 9, 0), 4],
    ]
    path = write_xlsx(tmp_path / "plan.xlsx", rows)

    [work] = read_schedule(path, settings_for(path), WARSAW)

    assert [item.interval.hours for item in work.orders] == [2.5, 4.0]
    assert work.orders[0].interval.start == utc(2026, 12, 7, 5)


def test_xlsx_named_sheet_read(tmp_path: Path) -> None:
    path = tmp_path / "plan.xlsx"
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Notatki"
    first.append(["to nie jest plan"])
    second = workbook.create_sheet("Plan tygodniowy")
    for row in PLAN_ROWS:
        second.append(row)
    workbook.save(path)

    schedule = read_schedule(path, settings_for(path, sheet="Plan tygodniowy"), WARSAW)

    assert schedule == EXPECTED_PLAN


def test_xlsx_missing_sheet_named(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "plan.xlsx", PLAN_ROWS, sheet="Arkusz1")

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path, sheet="Plan"), WARSAW)

    message = str(raised.value)
    assert "plan.xlsx" in message
    assert "'Plan' not found" in message
    assert "'Arkusz1'" in message


def test_xlsx_bad_text_date_located(tmp_path: Path) -> None:
    rows = [*PLAN_ROWS, ["ZP/2026/0504 pokrywa", "FREZ-01", "31.11.2026 06:00", "jutro", None]]
    path = write_xlsx(tmp_path / "plan.xlsx", rows)

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    error = raised.value
    assert error.path == path
    assert error.line == 5
    assert error.column == "Początek"
    assert "'31.11.2026 06:00'" in str(error)
    assert "'%d.%m.%Y %H:%M'" in str(error)


def test_xlsx_missing_column_named(tmp_path: Path) -> None:
    rows = [["Zlecenie", "Stanowisko", "Początek", "Koniec"], PLAN_ROWS[1][:4]]
    path = write_xlsx(tmp_path / "plan.xlsx", rows)

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    error = raised.value
    assert error.line == 1
    assert error.column == "Maszyna"
    assert "'Stanowisko'" in str(error)
    assert "columns.machine" in str(error)


def test_xlsx_without_rows_empty(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "plan.xlsx", [])

    with pytest.raises(ExportFormatError, match=r"plan\.xlsx: the file is empty"):
        read_schedule(path, settings_for(path), WARSAW)


def test_xlsx_truncated_rejected(tmp_path: Path) -> None:
    whole = write_xlsx(tmp_path / "whole.xlsx", PLAN_ROWS).read_bytes()
    path = tmp_path / "plan.xlsx"
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    message = str(raised.value)
    assert message.startswith(f"{path}: not a readable XLSX workbook")
    assert "export the file again" in message


def test_xls_binary_format_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plan.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)

    with pytest.raises(ExportFormatError, match=r"plan\.xls: .*save the file as \.xlsx or CSV"):
        read_schedule(path, settings_for(path), WARSAW)


# --- CSV cut short and large exports -------------------------------------------------------------


def test_csv_truncated_mid_row_located(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    text = (
        "Zlecenie;Maszyna;Początek;Koniec\r\n"
        "ZP/1 łożysko;FREZ-01;07.12.2026 06:00;07.12.2026 14:00\r\n"
        "ZP/2 żuraw;FREZ-01;08.12.2026 06:"
    )
    path.write_text(text, encoding="cp1250")

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    error = raised.value
    assert error.line == 3
    assert error.column == "Początek"
    assert "'08.12.2026 06:'" in str(error)


def test_csv_truncated_in_quotes_located(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    text = (
        "Zlecenie;Maszyna;Początek;Koniec\r\n"
        "ZP/1 łożysko;FREZ-01;07.12.2026 06:00;07.12.2026 14:00\r\n"
        '"ZP/2; pokrywa ślizgu'
    )
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    assert raised.value.line == 3
    assert raised.value.column == "Maszyna"


def write_large_plan(path: Path, target_bytes: int) -> int:
    """Write a plan of wide rows (long notes, as ERP exports have) until ``target_bytes``."""
    note = "Uwagi technologiczne: gratowanie krawędzi, kontrola wymiarów, łożysko – " * 40
    rows = 0
    with path.open("w", encoding="cp1250", newline="") as stream:
        stream.write("Zlecenie;Maszyna;Początek;Koniec;Uwagi\r\n")
        while stream.tell() < target_bytes:
            day = 1 + rows % 28
            stream.write(
                f"ZP/2026/{rows:06d};FREZ-{rows % 7:02d};{day:02d}.11.2026 06:00;"
                f"{day:02d}.11.2026 07:00;{note}\r\n"
            )
            rows += 1
    return rows


def test_large_csv_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    rows = write_large_plan(path, 8 * 1024 * 1024)
    size = os.path.getsize(path)

    tracemalloc.start()
    try:
        schedule = read_schedule(path, settings_for(path), WARSAW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sum(len(work.orders) for work in schedule) == rows
    assert len(schedule) == 7
    # Reading the file whole would need more than its size; the orders kept are far smaller.
    assert peak < size / 4


# --- the adapter ---------------------------------------------------------------------------------


async def test_adapter_reads_newest_in_folder(tmp_path: Path) -> None:
    folder = tmp_path / "eksport"
    folder.mkdir()
    older = write_xlsx(folder / "plan_20261206.xlsx", PLAN_ROWS[:2])
    os.utime(older, (1_700_000_000, 1_700_000_000))
    write_xlsx(folder / "plan_20261207.xlsx", PLAN_ROWS)
    (folder / "~$plan_20261207.xlsx").write_bytes(b"Office lock file")
    (folder / "plan_20261208.xlsx.part").write_bytes(b"half written")
    adapter, notifications = make_adapter(tmp_path, path="eksport", pattern="plan_*.xlsx")

    await adapter.poll()

    assert adapter.collect() == EXPECTED_PLAN
    assert adapter.withheld_kinds() == {}
    assert notifications == [1]


async def test_adapter_bad_xlsx_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, notifications = make_adapter(tmp_path)
    path = write_xlsx(tmp_path / "plan.xlsx", PLAN_ROWS)
    await adapter.poll()
    whole = path.read_bytes()

    path.write_bytes(whole[:1000])
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == EXPECTED_PLAN
    assert adapter.withheld_kinds() == {}
    assert notifications == [1]
    [message] = error_messages(caplog)
    assert "not a readable XLSX workbook" in message
    assert "last production plan read stays in use" in message
    [health] = adapter.health()
    assert health.state == "disconnected"
    assert health.errors == {"invalid_exports": 1}
    assert health.detail is not None
    assert "plan.xlsx" in health.detail


async def test_adapter_bad_first_xlsx_withholds(tmp_path: Path) -> None:
    adapter, notifications = make_adapter(tmp_path)
    rows = [*PLAN_ROWS, ["ZP/9", "FREZ-01", "07.12.2026 08:00", "07.12.2026 06:00", None]]
    write_xlsx(tmp_path / "plan.xlsx", rows)

    await adapter.poll()

    assert adapter.collect() == []
    reason = adapter.withheld_kinds()[ResourceKind.MACHINE]
    assert "plan.xlsx:5" in reason
    assert "is before start" in reason
    assert notifications == []


def test_both_type_names_load_one_class() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    entry_points = pyproject["project"]["entry-points"]["kooperant.adapters"]

    loaded = []
    for name in ("schedule", "schedule_csv"):
        module, attribute = entry_points[name].split(":")
        loaded.append(getattr(import_module(module), attribute))

    assert loaded == [ScheduleAdapter, ScheduleAdapter]
    assert import_module("adapters.schedule_csv").ScheduleCsvAdapter is ScheduleAdapter
    assert "adapters.schedule" in pyproject["tool"]["setuptools"]["packages"]


async def test_adapter_empty_folder_withholds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "eksport"
    folder.mkdir()
    (folder / "plan_20261207.xlsx.part").write_bytes(b"half written")
    adapter, notifications = make_adapter(tmp_path, path="eksport", pattern="plan_*.xlsx")

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    reason = adapter.withheld_kinds()[ResourceKind.MACHINE]
    assert (
        reason == f"production plan {folder} not read: no file matching 'plan_*.xlsx' in the folder"
    )
    [message] = [record.getMessage() for record in caplog.records]
    assert f"no file matching 'plan_*.xlsx' in {folder}" in message
    assert notifications == []
