"""Tests of the IT team calendar parser and the it_team adapter on real files."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from openpyxl import Workbook
from pydantic import ValidationError

from adapters.base import AdapterContext, ConnectionState, ResourceAmounts
from adapters.errors import ExportFormatError
from adapters.it_team import Horizon, ItTeamAdapter, ItTeamSettings, read_team_calendar
from kooperant.protocol import Amount, ResourceKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "it_team"
CALENDAR_TEXT = (FIXTURES / "kalendarz.csv").read_text(encoding="utf-8")
WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2026, 12, 7)
TEAM = "zespol-automatyki"
# Every name and surname in the fixtures; none of them may appear in an observation.
PERSON_NAMES = (
    "Jan",
    "Kowalski",
    "Anna",
    "Nowak",
    "Piotr",
    "Wiśniewski",
    "Łukasz",
    "Żółkiewski",
    "Grzegorz",
    "Brzęczyszczykiewicz",
    "Małgorzata",
    "Wójcik",
    "Jędrzej",
    "Ślązak",
)


def days(skill: str, value: float) -> Amount:
    return Amount("person_days", value, "days", label=skill)


# kalendarz.csv over the 10 working days from Monday 7 to Friday 18 December 2026. Free days per
# person: Jan 10 - 3 - 5 * 0.5 = 4.5, Anna 10 - 7 (her project overlaps her leave) = 3,
# Piotr 10, Łukasz 0 (leave all month), Grzegorz 10 - 4 h / 8 h = 9.5.
EXPECTED_CALENDAR = [
    ResourceAmounts(
        TEAM,
        ResourceKind.IT_TEAM,
        (
            days("OPC UA", 13.0),
            days("PLC Siemens", 4.5),
            days("Python", 10.0),
            days("SCADA WinCC", 7.5),
            days("sieci przemysłowe", 9.5),
        ),
    )
]


def settings_for(path: Path, **overrides: object) -> ItTeamSettings:
    values: dict[str, object] = {"path": str(path), "resource": TEAM}
    values.update(overrides)
    return ItTeamSettings.model_validate(values)


def read(path: Path, first: date = MONDAY, **overrides: object) -> list[ResourceAmounts]:
    settings = settings_for(path, **overrides)
    horizon = Horizon(first, settings.horizon_days, frozenset(settings.holidays))
    return read_team_calendar(path, settings, horizon)


def read_error(path: Path, **overrides: object) -> ExportFormatError:
    with pytest.raises(ExportFormatError) as raised:
        read(path, **overrides)
    return raised.value


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


HEADER = ["Osoba", "Umiejętności", "Od", "Do", "Rodzaj", "Procent", "Godziny"]


def one_booking(tmp_path: Path, cells: list[str]) -> Path:
    valid = ["Piotr Wiśniewski", "Python", "07.12.2026", "08.12.2026", "projekt", "", ""]
    return write_csv(tmp_path / "kalendarz.csv", [HEADER, valid, cells])


# --- the horizon and the parser -------------------------------------------------------------------


def test_horizon_skips_weekends_and_holidays() -> None:
    saturday = date(2026, 12, 19)
    horizon = Horizon(saturday, 9, frozenset({date(2026, 12, 24), date(2026, 12, 25)}))

    assert horizon.working_days() == [
        date(2026, 12, 21),
        date(2026, 12, 22),
        date(2026, 12, 23),
    ]


def test_read_calendar_fixture() -> None:
    assert read(FIXTURES / "kalendarz.csv") == EXPECTED_CALENDAR


def test_read_calendar_with_holidays() -> None:
    holidays = ["2026-12-24", "2026-12-25", "2026-12-26"]

    calendar = read(FIXTURES / "kalendarz.csv", horizon_days=21, holidays=holidays)

    # 13 working days: 7-11, 14-18 and 21-23 December.
    assert calendar[0].amounts == (
        days("OPC UA", 19.0),
        days("PLC Siemens", 7.5),
        days("Python", 13.0),
        days("SCADA WinCC", 13.5),
        days("sieci przemysłowe", 12.5),
    )


def test_read_calendar_later_start() -> None:
    calendar = read(FIXTURES / "kalendarz.csv", first=date(2026, 12, 16), horizon_days=3)

    # 16-18 December: Jan is booked at 50 %, Anna is on leave, Grzegorz is free.
    assert calendar[0].amounts == (
        days("OPC UA", 3.0),
        days("PLC Siemens", 1.5),
        days("Python", 3.0),
        days("SCADA WinCC", 1.5),
        days("sieci przemysłowe", 3.0),
    )


def test_read_calendar_team_column() -> None:
    path = FIXTURES / "zespoly.csv"

    calendar = read(path, resource=None, teams={"Automatyka": TEAM})

    assert calendar == [
        ResourceAmounts(
            "dzial-it",
            ResourceKind.IT_TEAM,
            (days("Active Directory", 18.0), days("Windows Server", 8.0)),
            name="Dział IT",
        ),
        ResourceAmounts(
            TEAM,
            ResourceKind.IT_TEAM,
            (days("PLC Siemens", 17.5), days("Robotyka KUKA", 10.0)),
            name="Automatyka",
        ),
    ]


def test_person_names_not_in_observations() -> None:
    observations = [
        *read(FIXTURES / "kalendarz.csv"),
        *read(FIXTURES / "zespoly.csv", resource=None),
    ]

    text = repr(observations)

    assert len(observations) == 3
    for name in PERSON_NAMES:
        assert name not in text
        assert name.casefold() not in text.casefold()


def test_person_names_not_in_errors() -> None:
    error = read_error(FIXTURES / "two_teams.csv", resource=None)

    for name in PERSON_NAMES:
        assert name.casefold() not in str(error).casefold()


@pytest.mark.parametrize("encoding", ["cp1250", "utf-8-sig"])
def test_read_calendar_other_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "kalendarz.csv"
    path.write_text(CALENDAR_TEXT, encoding=encoding, newline="")

    assert read(path) == EXPECTED_CALENDAR


def test_read_calendar_xlsx_typed_cells(tmp_path: Path) -> None:
    path = tmp_path / "kalendarz.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(["Jan Kowalski", "PLC Siemens", datetime(2026, 12, 7), date(2026, 12, 8)])
    sheet.append(["Jan Kowalski", "PLC Siemens", date(2026, 12, 9), date(2026, 12, 9), "", 0.5])
    sheet.append(["Anna Nowak", "PLC Siemens", date(2026, 12, 14), date(2026, 12, 18), "", 25])
    sheet.append(["Anna Nowak", "PLC Siemens", date(2026, 12, 14), date(2026, 12, 14), "", "", 6])
    workbook.save(path)

    calendar = read(path)

    # Jan: 10 - 2 - 0.5 = 7.5. Anna: 10 - 5 * 0.25 - 0.75 (25 % and 6 h share 14 December).
    assert calendar[0].amounts == (days("PLC Siemens", 15.5),)


def test_person_with_two_teams_rejected() -> None:
    error = read_error(FIXTURES / "two_teams.csv", resource=None)

    assert error.line == 4
    assert error.column == "Zespół"
    assert "'dzial-it'" in str(error)
    assert "'automatyka' on line 2" in str(error)


def test_missing_column_rejected() -> None:
    error = read_error(FIXTURES / "missing_column.csv")

    assert error.line == 1
    assert error.column == "Do"
    assert "'Koniec'" in str(error)
    assert "columns.end" in str(error)


def test_bad_date_names_line() -> None:
    error = read_error(FIXTURES / "bad_date.csv")

    assert error.line == 3
    assert error.column == "Od"
    assert "'31.11.2026'" in str(error)
    assert "date_format" in str(error)


def test_end_before_start_rejected() -> None:
    error = read_error(FIXTURES / "end_before_start.csv")

    assert error.line == 2
    assert error.column == "Do"
    assert "10.12.2026 is before first day 18.12.2026" in str(error)


@pytest.mark.parametrize(
    ("cells", "column", "expected"),
    [
        (["A B", "Python", "07.12.2026", "", "projekt", "", ""], "Do", "empty last day"),
        (["A B", "Python", "", "", "urlop", "", ""], "Od", "booking without dates"),
        (["A B", "Python", "", "", "", "50", ""], "Od", "booking without dates"),
        (["A B", "Python", "07.12.2026", "07.12.2026", "urlop?", "", ""], "Rodzaj", "'urlop?'"),
        (["A B", "Python", "07.12.2026", "07.12.2026", "", "50", "4"], "Godziny", "both"),
        (["A B", "Python", "07.12.2026", "07.12.2026", "", "150", ""], "Procent", "0 to 100 %"),
        (["A B", "Python", "07.12.2026", "07.12.2026", "", "pół", ""], "Procent", "'pół'"),
        (["A B", "Python", "07.12.2026", "07.12.2026", "", "", "10"], "Godziny", "10 hours"),
        (["A B", "Python", "07.12.2026", "07.12.2026", "", "", "-2"], "Godziny", "at least 0"),
        (["A B", "Python", "7 grudnia", "07.12.2026", "", "", ""], "Od", "'7 grudnia'"),
        ([" ", "Python", "07.12.2026", "07.12.2026", "", "", ""], "Osoba", "empty person"),
    ],
)
def test_bad_cell_rejected(tmp_path: Path, cells: list[str], column: str, expected: str) -> None:
    path = one_booking(tmp_path, cells)

    error = read_error(path)

    assert error.line == 3
    assert error.column == column
    assert expected in str(error)


def test_team_without_id_rejected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "kalendarz.csv",
        [["Zespół", "Osoba", "Umiejętności", "Od", "Do"], ["???", "A B", "Python", "", ""]],
    )

    error = read_error(path, resource=None)

    assert error.line == 2
    assert error.column == "Zespół"
    assert "'???'" in str(error)
    assert "teams" in str(error)


def test_no_team_column_no_resource() -> None:
    error = read_error(FIXTURES / "kalendarz.csv", resource=None)

    assert error.line == 1
    assert "'Zespół'" in str(error)
    assert "'resource'" in str(error)


def test_empty_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "kalendarz.csv"
    path.write_bytes(b"")

    error = read_error(path)

    assert error.path == path
    assert "empty" in str(error)


def test_utf16_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "kalendarz.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + CALENDAR_TEXT.encode("utf-16-le"))

    assert "UTF-16" in str(read_error(path))


def test_wrong_encoding_setting_names_line(tmp_path: Path) -> None:
    path = tmp_path / "kalendarz.csv"
    path.write_text(CALENDAR_TEXT, encoding="cp1250", newline="")

    error = read_error(path, encoding="utf-8")

    assert error.line == 1  # "Umiejętności" in the header is not UTF-8
    assert "not valid utf-8" in str(error)


def test_truncated_csv_rejected(tmp_path: Path) -> None:
    data = CALENDAR_TEXT.encode("utf-8")
    path = tmp_path / "kalendarz.csv"
    path.write_bytes(data[: data.index(b";09.12.2026;")])  # line 2 ends after its first day

    error = read_error(path)

    assert error.line == 2
    assert error.column == "Do"


def test_truncated_xlsx_rejected(tmp_path: Path) -> None:
    path = tmp_path / "kalendarz.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    workbook.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    assert "not a readable XLSX workbook" in str(read_error(path))


def test_large_export_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "kalendarz.csv"
    first = date(2025, 1, 1)
    with path.open("w", encoding="cp1250", newline="") as stream:
        stream.write(";".join(HEADER) + "\r\n")
        for number in range(70_000):
            start = first + timedelta(days=number % 730)
            end = start + timedelta(days=number % 5)
            stream.write(
                f"Pracownik {number % 300:03d} Żółć;PLC Siemens, SCADA WinCC, Python;"
                f"{start:%d.%m.%Y};{end:%d.%m.%Y};projekt;{number % 100};\r\n"
            )
    size = path.stat().st_size
    assert size > 5_000_000

    tracemalloc.start()
    try:
        calendar = read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(calendar[0].amounts) == 3
    # About 1.5 MiB of the peak is the encoding check's chunk, the same for a file of any size.
    assert peak < size / 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"resource": "zespół/IT"}, "resource"),
        ({"teams": {"Dział IT": "dział it"}}, "teams"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 400}, "horizon_days"),
        ({"holidays": ["24.12.2026"]}, "holidays"),
        ({"hours_per_day": 0}, "hours_per_day"),
        ({"booking_kinds": []}, "booking_kinds"),
        ({"columns": {"osoba": "Osoba"}}, "columns.osoba"),
        ({"resurce": TEAM}, "resurce"),
    ],
)
def test_settings_invalid(overrides: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"path": "kalendarz.csv", **overrides}

    with pytest.raises(ValidationError) as raised:
        ItTeamSettings.model_validate(values)

    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert any(location.startswith(field) for location in locations)


# --- the adapter ----------------------------------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_adapter(
    tmp_path: Path, clock: Clock, notifications: list[int], **overrides: object
) -> ItTeamAdapter:
    context = AdapterContext(
        member="test-member-it-team",
        timezone=WARSAW,
        config_dir=tmp_path,
        notify_changed=lambda: notifications.append(1),
        clock=clock,
    )
    values: dict[str, object] = {"path": "kalendarz.csv", "resource": TEAM, "stable_seconds": 0}
    values.update(overrides)
    return ItTeamAdapter("kalendarz", ItTeamSettings.model_validate(values), context)


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_adapter_withholds_until_read(tmp_path: Path) -> None:
    notifications: list[int] = []
    # 23:30 UTC on Sunday is already Monday 7 December in Warsaw.
    adapter = make_adapter(
        tmp_path, Clock(datetime(2026, 12, 6, 23, 30, tzinfo=UTC)), notifications
    )

    await adapter.poll()

    assert adapter.collect() == []
    assert list(adapter.withheld_kinds()) == [ResourceKind.IT_TEAM]

    (tmp_path / "kalendarz.csv").write_text(CALENDAR_TEXT, encoding="cp1250", newline="")
    await adapter.poll()

    assert adapter.collect() == EXPECTED_CALENDAR
    assert adapter.withheld_kinds() == {}
    [health] = adapter.health()
    assert health.state is ConnectionState.CONNECTED
    assert len(notifications) == 1


async def test_adapter_counts_again_next_day(tmp_path: Path) -> None:
    notifications: list[int] = []
    clock = Clock(datetime(2026, 12, 7, 8, 20, tzinfo=UTC))
    adapter = make_adapter(tmp_path, clock, notifications)
    (tmp_path / "kalendarz.csv").write_text(CALENDAR_TEXT, encoding="utf-8", newline="")
    await adapter.poll()

    clock.now += timedelta(hours=12)
    await adapter.poll()
    assert len(notifications) == 1  # the same day: nothing to count again

    clock.now += timedelta(days=2)  # Wednesday 9 December; the horizon ends on 22 December
    await adapter.poll()

    [team] = adapter.collect()
    assert isinstance(team, ResourceAmounts)
    # Piotr is free on the 10 working days 9-11, 14-18 and 21-22 December.
    assert days("Python", 10.0) in team.amounts
    # Jan: 9 December booked, 14-18 at 50 %: 10 - 1 - 2.5 = 6.5. Łukasz is on leave.
    assert days("PLC Siemens", 6.5) in team.amounts
    assert len(notifications) == 2


async def test_adapter_bad_version_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications: list[int] = []
    clock = Clock(datetime(2026, 12, 7, 8, 20, tzinfo=UTC))
    adapter = make_adapter(tmp_path, clock, notifications)
    path = tmp_path / "kalendarz.csv"
    path.write_text(CALENDAR_TEXT, encoding="utf-8", newline="")
    await adapter.poll()

    path.write_bytes((FIXTURES / "bad_date.csv").read_bytes())
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()
        clock.now += timedelta(days=1)  # parsing the bad file again is not logged again
        await adapter.poll()

    assert adapter.collect() == EXPECTED_CALENDAR
    assert adapter.withheld_kinds() == {}
    [message] = error_messages(caplog)
    assert "kalendarz.csv:3" in message
    assert "'31.11.2026'" in message
    assert "last IT team calendar read stays in use" in message
    for name in PERSON_NAMES:
        assert name not in message
    [health] = adapter.health()
    assert health.state is ConnectionState.DISCONNECTED
    assert health.errors == {"invalid_exports": 1}
    assert len(notifications) == 1


def test_example_config_valid() -> None:
    example = FIXTURES.parents[2] / "config" / "adapters" / "it_team.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = ItTeamSettings.model_validate(values)

    assert entry["type"] == "it_team"
    assert settings.resource == TEAM
    assert date(2026, 12, 24) in settings.holidays
