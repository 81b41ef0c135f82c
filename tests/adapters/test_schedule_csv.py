"""Tests of the production plan parser and the schedule_csv adapter on real files."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from adapters.base import AdapterContext, ScheduledWork, WorkOrder
from adapters.errors import ExportFormatError
from adapters.exports.polish_csv import parse_decimal
from adapters.exports.watched_file import WatchedFile
from adapters.schedule_csv import (
    ScheduleCsvAdapter,
    ScheduleCsvSettings,
    parse_schedule,
    read_schedule,
    slugify_machine_code,
)
from kooperant.demo.schedule import DEMO_ORDERS, write_demo_schedule
from kooperant.intervals import Interval
from kooperant.protocol import ResourceKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schedule"
WARSAW = ZoneInfo("Europe/Warsaw")
MACHINES = {"FREZ-01": "cnc-5ax-01", "LASER-02": "laser-02"}
PLAN_TEXT = (FIXTURES / "plan.csv").read_text(encoding="utf-8")
WAIT_SECONDS = 5.0


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def order(order_id: str, start: datetime, end: datetime) -> WorkOrder:
    return WorkOrder(order_id, Interval(start, end))


# plan.csv read with MACHINES; March 2026 before the 29th is CET, UTC+1.
EXPECTED_PLAN = [
    ScheduledWork(
        "cnc-5ax-01",
        (
            order("ZP/2026/0001 łożysko kulkowe", utc(2026, 3, 2, 5), utc(2026, 3, 2, 10)),
            order("ZP/2026/0002 żuraw", utc(2026, 3, 3, 13), utc(2026, 3, 3, 21)),
        ),
    ),
    ScheduledWork(
        "laser-02",
        (order("ZP/2026/0003 wąż", utc(2026, 3, 1, 23), utc(2026, 3, 2, 5)),),
    ),
    ScheduledWork(
        "prasa-03",
        (order("ZP/2026/0004; obudowa", utc(2026, 3, 4, 5), utc(2026, 3, 4, 13, 30)),),
    ),
]


def settings_for(path: Path, **overrides: object) -> ScheduleCsvSettings:
    values: dict[str, object] = {"path": str(path), "machines": MACHINES}
    values.update(overrides)
    return ScheduleCsvSettings.model_validate(values)


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ";") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (PLAN_TEXT.encode("utf-8"), "auto"),
        (PLAN_TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + PLAN_TEXT.encode("utf-8"), "auto"),
        (codecs.BOM_UTF8 + PLAN_TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF8 + PLAN_TEXT.encode("utf-8"), "utf-8"),
        (PLAN_TEXT.encode("cp1250"), "auto"),
        (PLAN_TEXT.encode("cp1250"), "cp1250"),
    ],
    ids=["utf8-auto", "utf8", "bom-auto", "bom-utf8sig", "bom-utf8", "cp1250-auto", "cp1250"],
)
def test_plan_same_in_every_encoding(tmp_path: Path, encoded: bytes, encoding: str) -> None:
    path = tmp_path / "plan.csv"
    path.write_bytes(encoded)

    schedule = read_schedule(path, settings_for(path, encoding=encoding), WARSAW)

    assert schedule == EXPECTED_PLAN


def test_plan_cp1250_bytes_differ_from_utf8() -> None:
    # Guards the encoding cases above: the fixture must contain letters that cp1250 encodes
    # differently from UTF-8, or those cases would test nothing.
    assert PLAN_TEXT.encode("cp1250") != PLAN_TEXT.encode("utf-8")
    for letter in "ąłż":
        assert letter in PLAN_TEXT


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("setting", ["auto", "utf-8", "cp1250"])
def test_plan_utf16_rejected(tmp_path: Path, encoding: str, setting: str) -> None:
    path = tmp_path / "plan-utf16.csv"
    path.write_bytes(PLAN_TEXT.encode(encoding))

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path, encoding=setting), WARSAW)

    message = str(raised.value)
    assert "plan-utf16.csv" in message
    assert "UTF-16" in message
    assert "UTF-8 or Windows-1250" in message


@pytest.mark.parametrize(
    ("data", "line", "offset"),
    [
        pytest.param(b"garbage\x00\xff;;", 1, 7, id="damaged-header"),
        pytest.param(PLAN_TEXT.encode("utf-8") + b"\x00\x00\x00\x00\r\n", 7, None, id="nul-tail"),
        pytest.param(b"\x00" + PLAN_TEXT.encode("utf-8"), 1, 0, id="nul-first-byte"),
    ],
)
@pytest.mark.parametrize("setting", ["auto", "utf-8", "cp1250"])
def test_plan_nul_bytes_not_utf16(
    tmp_path: Path, data: bytes, line: int, offset: int | None, setting: str
) -> None:
    path = tmp_path / "plan-damaged.csv"
    path.write_bytes(data)

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path, encoding=setting), WARSAW)

    error = raised.value
    message = str(error)
    expected_offset = data.index(b"\x00") if offset is None else offset
    assert error.line == line
    assert f"plan-damaged.csv:{line}: " in message
    assert f"NUL byte at offset {expected_offset}" in message
    assert "not a text export" in message
    assert "export settings" in message
    assert "UTF-16" not in message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_plan_utf16_without_bom_rejected_despite_damage(tmp_path: Path, encoding: str) -> None:
    # A few damaged bytes after the start do not hide the NUL pattern of UTF-16 text.
    path = tmp_path / "plan-utf16.csv"
    path.write_bytes(PLAN_TEXT.encode(encoding)[:40] + b"\xff\xff\xff" + b"\x00" * 5)

    with pytest.raises(ExportFormatError, match="UTF-16"):
        read_schedule(path, settings_for(path), WARSAW)


def test_plan_explicit_utf8_on_cp1250(tmp_path: Path) -> None:
    path = tmp_path / "plan-cp1250.csv"
    path.write_bytes(PLAN_TEXT.encode("cp1250"))

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path, encoding="utf-8"), WARSAW)

    error = raised.value
    assert error.line == 1  # "Początek" in the header
    assert "plan-cp1250.csv:1" in str(error)
    assert "utf-8" in str(error)
    assert "encoding: auto" in str(error)
    assert "encoding: cp1250" in str(error)


def test_plan_explicit_cp1250_undefined_byte(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_bytes(PLAN_TEXT.encode("utf-8") + b"\x81\r\n")

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path, encoding="cp1250"), WARSAW)

    assert raised.value.line == 7
    assert "0x81" in str(raised.value)
    assert "encoding: auto" in str(raised.value)


def test_plan_byte_undefined_in_cp1250(tmp_path: Path) -> None:
    path = tmp_path / "plan-broken.csv"
    data = PLAN_TEXT.encode("cp1250").replace(b"kulkowe", b"kulk\x98we")
    path.write_bytes(data)

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    assert raised.value.line == 2
    assert "0x98" in str(raised.value)
    assert "cp1250" in str(raised.value)


@dataclass(frozen=True)
class BadFile:
    name: str
    line: int
    column: str
    fragments: tuple[str, ...] = field(default=())


BAD_FILES = [
    BadFile(
        "missing_column.csv", 1, "Koniec", ("'Zlecenie', 'Maszyna', 'Początek'", "columns.end")
    ),
    BadFile("bad_date.csv", 3, "Początek", ("31.02.2026 06:00", "'%d.%m.%Y %H:%M'")),
    BadFile("end_before_start.csv", 2, "Koniec", ("02.03.2026 06:00", "02.03.2026 11:00")),
    BadFile("empty_machine.csv", 4, "Maszyna", ("empty machine code",)),
]


@pytest.mark.parametrize("bad", BAD_FILES, ids=[bad.name for bad in BAD_FILES])
def test_bad_file_error_names_location(bad: BadFile) -> None:
    path = FIXTURES / bad.name

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    error = raised.value
    message = str(error)
    assert error.path == path
    assert error.line == bad.line
    assert error.column == bad.column
    assert f"{bad.name}:{bad.line}" in message
    assert repr(bad.column) in message
    for fragment in bad.fragments:
        assert fragment in message


def test_empty_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\r\n;;;\r\n")

    with pytest.raises(ExportFormatError, match=r"empty\.csv: the file is empty"):
        read_schedule(path, settings_for(path), WARSAW)


def test_empty_order_number_rejected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [
            ["Zlecenie", "Maszyna", "Początek", "Koniec"],
            ["", "FREZ-01", "02.03.2026", "03.03.2026"],
        ],
    )

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    assert raised.value.line == 2
    assert raised.value.column == "Zlecenie"


def test_header_match_ignores_case_spaces_bom(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    text = (
        " ZLECENIE ;maszyna;  POCZĄTEK;Koniec \r\nA-1;FREZ-01;02.03.2026 06:00;02.03.2026 07:00\r\n"
    )
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))

    # With an explicit 'utf-8' the BOM stays in the first header cell.
    schedule = read_schedule(path, settings_for(path, encoding="utf-8"), WARSAW)

    assert schedule == [
        ScheduledWork("cnc-5ax-01", (order("A-1", utc(2026, 3, 2, 5), utc(2026, 3, 2, 6)),))
    ]


def test_custom_columns_and_date_format(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [
            ["Nr zlecenia", "Stanowisko", "Od", "Do"],
            ["A-1", "FREZ-01", "2/3/2026 6h", "2/3/2026 8h"],
        ],
    )
    settings = settings_for(
        path,
        columns={"order": "Nr zlecenia", "machine": "Stanowisko", "start": "Od", "end": "Do"},
        date_format="%d/%m/%Y %Hh",
    )

    schedule = read_schedule(path, settings, WARSAW)

    assert schedule == [
        ScheduledWork("cnc-5ax-01", (order("A-1", utc(2026, 3, 2, 5), utc(2026, 3, 2, 7)),))
    ]


@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_delimiter_auto_detected(tmp_path: Path, delimiter: str) -> None:
    rows = [
        ["Zlecenie", "Maszyna", "Początek", "Koniec", "Ilość"],
        ["A-1", "FREZ-01", "02.03.2026 06:00", "02.03.2026 07:00", "1,5"],
    ]
    path = write_csv(tmp_path / "plan.csv", rows, delimiter=delimiter)

    schedule = read_schedule(path, settings_for(path, delimiter="auto"), WARSAW)

    assert schedule == [
        ScheduledWork("cnc-5ax-01", (order("A-1", utc(2026, 3, 2, 5), utc(2026, 3, 2, 6)),))
    ]


def test_delimiter_auto_without_candidates(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("Zlecenie|Maszyna|Początek|Koniec\r\n", encoding="utf-8")

    with pytest.raises(ExportFormatError, match="cannot detect the delimiter"):
        read_schedule(path, settings_for(path, delimiter="auto"), WARSAW)


def test_hours_column_with_decimal_comma(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [
            ["Zlecenie", "Maszyna", "Początek", "Godziny"],
            ["A-1", "FREZ-01", "02.03.2026 06:00", "1,5"],
            ["A-2", "FREZ-01", "02.03.2026 08:00", "2"],
        ],
    )

    schedule = read_schedule(path, settings_for(path), WARSAW)

    assert schedule == [
        ScheduledWork(
            "cnc-5ax-01",
            (
                order("A-1", utc(2026, 3, 2, 5), utc(2026, 3, 2, 6, 30)),
                order("A-2", utc(2026, 3, 2, 7), utc(2026, 3, 2, 9)),
            ),
        )
    ]


def test_hours_used_when_end_empty(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [
            ["Zlecenie", "Maszyna", "Początek", "Koniec", "Godziny"],
            ["A-1", "FREZ-01", "02.03.2026 06:00", "", "0,25"],
            ["A-2", "FREZ-01", "02.03.2026 08:00", "02.03.2026 09:00", "99"],
        ],
    )

    [work] = read_schedule(path, settings_for(path), WARSAW)

    assert [item.interval.hours for item in work.orders] == [0.25, 1.0]


@pytest.mark.parametrize("hours", ["abc", "-1", "1,2,3"])
def test_hours_invalid_rejected(tmp_path: Path, hours: str) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [["Zlecenie", "Maszyna", "Początek", "Godziny"], ["A-1", "FREZ-01", "02.03.2026", hours]],
    )

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    assert raised.value.line == 2
    assert raised.value.column == "Godziny"
    assert repr(hours) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,5", 1.5),
        ("1.5", 1.5),
        ("12", 12.0),
        ("1 234,5", 1234.5),
        ("1\u00a0234,5", 1234.5),
        ("1.234,5", 1234.5),
        ("-0,25", -0.25),
        ("", None),
        ("abc", None),
        ("1,2,3", None),
        ("1.234.567", 1234567.0),
        ("0.500", 0.5),
        ("1.2345", 1.2345),
        ("1.234", None),
        ("12.500", None),
        ("1.2,5", None),
        ("1.23.4", None),
    ],
)
def test_parse_decimal(text: str, expected: float | None) -> None:
    assert parse_decimal(text) == expected


def test_dst_ambiguous_and_missing_times(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [
            ["Zlecenie", "Maszyna", "Początek", "Koniec"],
            # 02:30 occurs twice on 2026-10-25: the first time, in summer time (UTC+2), is used.
            ["autumn", "FREZ-01", "25.10.2026 01:00", "25.10.2026 02:30"],
            # 02:30 does not exist on 2026-03-29: the winter offset (UTC+1) is applied.
            ["spring", "FREZ-01", "29.03.2026 01:00", "29.03.2026 02:30"],
        ],
    )

    [work] = read_schedule(path, settings_for(path), WARSAW)

    by_id = {item.order_id: item.interval for item in work.orders}
    assert by_id["autumn"] == Interval(utc(2026, 10, 24, 23), utc(2026, 10, 25, 0, 30))
    assert by_id["spring"] == Interval(utc(2026, 3, 29, 0), utc(2026, 3, 29, 1, 30))
    assert by_id["spring"].end.astimezone(WARSAW).strftime("%H:%M %Z") == "03:30 CEST"
    assert by_id["autumn"].hours == 1.5
    assert by_id["spring"].hours == 1.5


def test_unmapped_codes_merged_by_resource(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [
            ["Zlecenie", "Maszyna", "Początek", "Koniec"],
            ["A-2", "Tokarka Ł 1", "03.03.2026 06:00", "03.03.2026 07:00"],
            ["A-1", "tokarka-l-1", "02.03.2026 06:00", "02.03.2026 07:00"],
        ],
    )

    schedule = read_schedule(path, settings_for(path), WARSAW)

    assert [work.resource for work in schedule] == ["tokarka-l-1"]
    assert [item.order_id for item in schedule[0].orders] == ["A-1", "A-2"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("FREZ-01", "frez-01"),
        ("PRASA 03", "prasa-03"),
        ("Żuraw/Łódź 2", "zuraw-lodz-2"),
        ("  -x_1.2", "x_1.2"),
        ("???", ""),
        ("A" * 80, "a" * 64),
    ],
)
def test_slugify_machine_code(code: str, expected: str) -> None:
    assert slugify_machine_code(code) == expected


def test_machine_code_without_slug_rejected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "plan.csv",
        [["Zlecenie", "Maszyna", "Początek", "Koniec"], ["A-1", "???", "02.03.2026", "03.03.2026"]],
    )

    with pytest.raises(ExportFormatError) as raised:
        read_schedule(path, settings_for(path), WARSAW)

    assert raised.value.line == 2
    assert raised.value.column == "Maszyna"
    assert "'???'" in str(raised.value)
    assert "machines" in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"encoding": "latin-1"}, "encoding"),
        ({"delimiter": "|"}, "delimiter"),
        ({"date_format": "%H:%M"}, "date_format"),
        ({"machines": {"FREZ-01": "bad/id"}}, "machines"),
        ({"columns": {"ordr": "Zlecenie"}}, "columns.ordr"),
        ({"poll_interval_seconds": 0}, "poll_interval_seconds"),
        ({"stable_seconds": -1}, "stable_seconds"),
        ({"pth": "plan.csv"}, "pth"),
    ],
)
def test_settings_invalid(overrides: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"path": "plan.csv", **overrides}

    with pytest.raises(ValidationError) as raised:
        ScheduleCsvSettings.model_validate(values)

    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert field in locations


def test_settings_bad_machine_names_code() -> None:
    with pytest.raises(ValidationError, match="'FREZ-01' maps to 'bad/id'"):
        ScheduleCsvSettings.model_validate({"path": "p.csv", "machines": {"FREZ-01": "bad/id"}})


# --- the file watcher -----------------------------------------------------------------------------


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_watched_file_waits_until_stable(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    clock = ManualClock()
    watched = WatchedFile(path, stable_seconds=2.0, clock=clock)

    assert watched.poll() is None
    assert watched.exists is False

    path.write_bytes(b"first part")
    assert watched.poll() is None
    clock.now += 1.5
    with path.open("ab") as handle:
        handle.write(b" and the rest")
    assert watched.poll() is None  # grew: the two seconds start again
    clock.now += 1.9
    assert watched.poll() is None

    assert watched.seconds_until_stable() == pytest.approx(0.1)
    clock.now += 0.1
    version = watched.poll()
    assert version is not None
    assert version.size == len(b"first part and the rest")

    clock.now += 10
    assert watched.poll() is None  # each version is returned once
    assert watched.seconds_until_stable() is None


def test_watched_file_missing_then_back(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    clock = ManualClock()
    watched = WatchedFile(path, stable_seconds=0.0, clock=clock)
    path.write_bytes(b"v1")
    assert watched.poll() is not None

    path.unlink()
    assert watched.poll() is None
    assert watched.exists is False

    path.write_bytes(b"v2 longer")
    assert watched.poll() is not None
    assert watched.exists is True


# --- the adapter ----------------------------------------------------------------------------------


class Notifications:
    """A notify callback that counts calls and sets an asyncio.Event."""

    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()

    def __call__(self) -> None:
        self.count += 1
        self.event.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.event.wait(), WAIT_SECONDS)
        self.event.clear()


def make_adapter(
    tmp_path: Path, notifications: Notifications, **overrides: object
) -> ScheduleCsvAdapter:
    context = AdapterContext(
        member="test-member",
        timezone=WARSAW,
        config_dir=tmp_path,
        notify_changed=notifications,
        clock=lambda: datetime.now(UTC),
    )
    values: dict[str, object] = {"path": "plan.csv", "machines": MACHINES, "stable_seconds": 0}
    values.update(overrides)
    return ScheduleCsvAdapter("plan", ScheduleCsvSettings.model_validate(values), context)


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_adapter_reads_relative_path(tmp_path: Path) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    (tmp_path / "plan.csv").write_text(PLAN_TEXT, encoding="utf-8")

    await adapter.poll()

    assert adapter.path == tmp_path / "plan.csv"
    assert adapter.collect() == EXPECTED_PLAN
    assert adapter.withheld_kinds() == {}
    assert notifications.count == 1

    await adapter.poll()
    assert notifications.count == 1  # an unchanged file is not read again


async def test_adapter_missing_file_withholds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == []
    withheld = adapter.withheld_kinds()
    assert list(withheld) == [ResourceKind.MACHINE]
    assert "does not exist" in withheld[ResourceKind.MACHINE]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert str(tmp_path / "plan.csv") in warnings[0]

    (tmp_path / "plan.csv").write_text(PLAN_TEXT, encoding="utf-8")
    await adapter.poll()

    assert adapter.collect() == EXPECTED_PLAN
    assert adapter.withheld_kinds() == {}
    assert notifications.count == 1


async def test_adapter_bad_version_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    path = tmp_path / "plan.csv"
    path.write_text(PLAN_TEXT, encoding="utf-8")
    await adapter.poll()

    bad = PLAN_TEXT.replace("03.03.2026 14:00", "33.03.2026 14:00")
    path.write_text(bad + "\r\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == EXPECTED_PLAN
    assert adapter.withheld_kinds() == {}
    assert notifications.count == 1
    [message] = error_messages(caplog)
    assert "plan.csv:3" in message
    assert "'Początek'" in message
    assert "33.03.2026 14:00" in message
    assert "last production plan read stays in use" in message

    fixed = PLAN_TEXT.replace("ZP/2026/0002 żuraw", "ZP/2026/0002 żuraw nowy")
    path.write_text(fixed, encoding="utf-8")
    await adapter.poll()

    assert notifications.count == 2
    works = [work for work in adapter.collect() if isinstance(work, ScheduledWork)]
    orders = [item.order_id for work in works for item in work.orders]
    assert "ZP/2026/0002 żuraw nowy" in orders


async def test_adapter_bad_first_version_withholds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    (tmp_path / "plan.csv").write_bytes((FIXTURES / "end_before_start.csv").read_bytes())

    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()

    assert adapter.collect() == []
    reason = adapter.withheld_kinds()[ResourceKind.MACHINE]
    assert "plan.csv:2" in reason
    [message] = error_messages(caplog)
    assert "offers of kind machine are withheld" in message
    assert notifications.count == 0


async def test_adapter_waits_for_growing_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications, stable_seconds=0.5, poll_interval_seconds=0.05)
    path = tmp_path / "plan.csv"
    data = PLAN_TEXT.encode("cp1250")
    middle = data.index(b"FREZ-01;03.03")  # in the middle of the second order

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.start()
        try:
            path.write_bytes(data[:middle])
            await asyncio.sleep(0.2)
            assert notifications.count == 0
            assert ResourceKind.MACHINE in adapter.withheld_kinds()

            with path.open("ab") as handle:
                handle.write(data[middle:])
            started = asyncio.get_running_loop().time()
            await notifications.wait()
            waited = asyncio.get_running_loop().time() - started
        finally:
            await adapter.stop()

    assert waited >= 0.5
    assert waited < 2.0  # read once stable, without waiting for a long poll interval
    assert notifications.count == 1
    assert adapter.collect() == EXPECTED_PLAN
    assert error_messages(caplog) == []


async def test_adapter_reads_before_next_poll(tmp_path: Path) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications, stable_seconds=0.3, poll_interval_seconds=60)
    (tmp_path / "plan.csv").write_text(PLAN_TEXT, encoding="utf-8")

    await adapter.start()
    try:
        await notifications.wait()  # within WAIT_SECONDS, far shorter than the poll interval
    finally:
        await adapter.stop()

    assert adapter.collect() == EXPECTED_PLAN


async def test_adapter_stop_without_start(tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path, Notifications())

    await adapter.stop()

    assert adapter.collect() == []


def test_expected_plan_durations() -> None:
    # Cross-checks EXPECTED_PLAN against the wall times written in plan.csv.
    first = EXPECTED_PLAN[0].orders[0].interval
    assert first.start.astimezone(WARSAW) == datetime(2026, 3, 2, 6, tzinfo=WARSAW)
    assert first.duration == timedelta(hours=5)


def test_parse_demo_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan-produkcji.csv"
    write_demo_schedule(path, datetime(2026, 10, 20, 12, tzinfo=UTC), WARSAW)
    machines = {"FREZ-01": "cnc-5ax-01", "LASER-02": "laser-02", "PRASA-03": "press-03"}
    settings = settings_for(path, machines=machines)

    schedule = parse_schedule(path.read_bytes(), path, settings, WARSAW)

    counts = {work.resource: len(work.orders) for work in schedule}
    expected = {machines[code]: len(orders) for code, orders in DEMO_ORDERS.items()}
    assert counts == expected
    first = schedule[0].orders[0]
    assert first.interval.start.astimezone(WARSAW) == datetime(2026, 10, 20, 6, tzinfo=WARSAW)
    assert "łożysko" in first.order_id


def test_example_config_valid() -> None:
    example = FIXTURES.parents[2] / "config" / "adapters" / "schedule.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = ScheduleCsvSettings.model_validate(values)

    assert entry["type"] == "schedule"
    assert settings == ScheduleCsvSettings.model_validate(
        {"path": "exports/plan.csv", "machines": MACHINES}
    )


async def test_adapter_warns_unmapped_machine_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    path = tmp_path / "plan.csv"
    path.write_text(PLAN_TEXT, encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="adapters.schedule.adapter"):
        await adapter.poll()
        path.write_text(PLAN_TEXT + "\r\n", encoding="utf-8")
        await adapter.poll()

    [message] = [record.getMessage() for record in caplog.records]
    assert "machine codes not listed in 'machines'" in message
    assert message.endswith("prasa-03; add them to 'machines' if they are machines you offer")
    assert notifications.count == 2
