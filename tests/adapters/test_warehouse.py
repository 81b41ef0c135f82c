"""Tests of the storage locations parser and the warehouse adapter on real CSV and XLSX files."""

from __future__ import annotations

import codecs
import logging
import os
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from openpyxl import Workbook
from pydantic import ValidationError

from adapters.base import AdapterContext, ResourceAmounts
from adapters.errors import ExportFormatError
from adapters.warehouse import WarehouseAdapter, WarehouseSettings, read_locations
from kooperant.protocol import Amount, ResourceKind

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "warehouse"
LOCATIONS_TEXT = (FIXTURES / "lokalizacje.csv").read_text(encoding="utf-8")
WAREHOUSES = {"MAG-ŁDZ": "magazyn-lodz"}
HEADER = ["Magazyn", "Lokalizacja", "Typ składowania", "Miejsca paletowe", "Zajęte miejsca"]


def storage(resource: str, *amounts: Amount) -> ResourceAmounts:
    return ResourceAmounts(resource=resource, kind=ResourceKind.STORAGE, amounts=amounts)


def pallets(value: float, label: str) -> Amount:
    return Amount("pallet_places", value, "pallets", label=label)


def area(value: float, label: str) -> Amount:
    return Amount("floor_area", value, "m2", label=label)


# lokalizacje.csv read with WAREHOUSES. "MAG GDAŃSK" is not mapped, so it becomes mag-gdansk.
EXPECTED = [
    storage("mag-gdansk", pallets(18, "ambient"), area(750, "ambient")),
    storage(
        "magazyn-lodz",
        pallets(6, "ambient"),
        area(290.25, "ambient"),
        pallets(5, "cold"),
        area(0, "cold"),
        pallets(4, "hazardous"),
    ),
]


def settings_for(path: Path, **overrides: object) -> WarehouseSettings:
    values: dict[str, object] = {"path": str(path), "warehouses": WAREHOUSES}
    values.update(overrides)
    return WarehouseSettings.model_validate(values)


def write_rows(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    path.write_text("".join(";".join(row) + "\r\n" for row in rows), encoding=encoding)
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    worksheet = workbook.active
    assert worksheet is not None
    worksheet.title = "Lokalizacje"
    for row in rows:
        worksheet.append(row)
    workbook.save(path)
    return path


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        LOCATIONS_TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + LOCATIONS_TEXT.encode("utf-8"),
        LOCATIONS_TEXT.encode("cp1250"),
    ],
    ids=["utf8", "utf8-bom", "cp1250"],
)
def test_locations_same_in_every_encoding(tmp_path: Path, encoded: bytes) -> None:
    path = tmp_path / "lokalizacje.csv"
    path.write_bytes(encoded)

    report = read_locations(path, settings_for(path))

    assert report.amounts == EXPECTED
    assert report.rows == 8
    assert report.over_capacity == 0


def test_locations_fixture_has_polish_letters() -> None:
    # Guards the encoding cases above: cp1250 must encode the fixture differently from UTF-8.
    assert LOCATIONS_TEXT.encode("cp1250") != LOCATIONS_TEXT.encode("utf-8")
    for letter in "ąęłóśźż":
        assert letter in LOCATIONS_TEXT.lower()


def test_locations_xlsx_numbers_and_text(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        [*HEADER, "Powierzchnia m2", "Zajęta powierzchnia m2"],
        ["MAG-ŁDZ", "A-01-01", "suchy", 24, 18, None, None],
        ["MAG-ŁDZ", "B-STREFA", "Normalny", None, None, 420.5, "130,25"],
        ["MAG-ŁDZ", "CH-01", "chłodnia", "12", 7.0, None, None],
        [2, "Ż-01", "niebezpieczne", 10, 9, None, None],
    ]
    path = write_xlsx(tmp_path / "lokalizacje.xlsx", rows)

    report = read_locations(path, settings_for(path, warehouses={"MAG-ŁDZ": "lodz", "2": "m2"}))

    assert report.amounts == [
        storage("lodz", pallets(6, "ambient"), area(290.25, "ambient"), pallets(5, "cold")),
        storage("m2", pallets(1, "hazardous")),
    ]


def test_reserve_kept_back_never_negative(tmp_path: Path) -> None:
    path = FIXTURES / "lokalizacje.csv"
    reserve = {"ambient": {"pallet_places": 10, "floor_area": 90.25}, "cold": {"pallet_places": 2}}

    report = read_locations(path, settings_for(path, reserve=reserve))

    assert report.amounts == [
        storage("mag-gdansk", pallets(8, "ambient"), area(659.75, "ambient")),
        storage(
            "magazyn-lodz",
            pallets(0, "ambient"),
            area(200, "ambient"),
            pallets(3, "cold"),
            area(0, "cold"),
            pallets(4, "hazardous"),
        ),
    ]


def test_over_capacity_counts_as_full() -> None:
    path = FIXTURES / "over_capacity.csv"

    report = read_locations(path, settings_for(path))

    assert report.amounts == [storage("magazyn-lodz", pallets(30, "ambient"))]
    assert report.over_capacity == 2
    assert report.first_over_capacity is not None
    assert "'A-01-02' on line 3" in report.first_over_capacity
    assert "30 > capacity 24" in report.first_over_capacity


def test_storage_types_setting_extends_defaults() -> None:
    path = FIXTURES / "unknown_type.csv"

    report = read_locations(path, settings_for(path, storage_types={" Kontener ": "hazardous"}))

    assert report.amounts == [
        storage("magazyn-lodz", pallets(6, "ambient"), pallets(6, "hazardous"))
    ]


def test_default_type_without_type_column(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "lokalizacje.csv",
        [["Magazyn", "Miejsca paletowe", "Zajęte miejsca"], ["MAG-ŁDZ", "40", "12,5"]],
    )

    report = read_locations(path, settings_for(path, default_storage_type="cold"))

    assert report.amounts == [storage("magazyn-lodz", pallets(27.5, "cold"))]


def test_default_type_fills_empty_cell(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "lokalizacje.csv",
        [HEADER, ["MAG-ŁDZ", "A-1", "", "10", "4"], ["MAG-ŁDZ", "A-2", "ADR", "5", "1"]],
    )

    report = read_locations(path, settings_for(path, default_storage_type="ambient"))

    assert report.amounts == [
        storage("magazyn-lodz", pallets(6, "ambient"), pallets(4, "hazardous"))
    ]


def test_empty_occupancy_means_empty_location(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "lokalizacje.csv", [HEADER, ["MAG-ŁDZ", "A-1", "suchy", "10", ""]])

    report = read_locations(path, settings_for(path))

    assert report.amounts == [storage("magazyn-lodz", pallets(10, "ambient"))]


@dataclass(frozen=True)
class BadFile:
    name: str
    line: int
    column: str
    fragments: tuple[str, ...]


BAD_FILES = [
    BadFile("unknown_type.csv", 3, "Typ składowania", ("'kontener'", "'storage_types'")),
    BadFile(
        "missing_occupancy.csv",
        1,
        "Zajęte miejsca",
        ("missing column 'Zajęte miejsca'", "'Miejsca paletowe' needs", "columns.pallets_occupied"),
    ),
    BadFile("bad_number.csv", 4, "Miejsca paletowe", ("'dwadzieścia'", "expected a number")),
    BadFile("negative_occupancy.csv", 2, "Zajęte miejsca", ("-3", "at least 0")),
]


@pytest.mark.parametrize("bad", BAD_FILES, ids=[bad.name for bad in BAD_FILES])
def test_bad_file_error_names_location(bad: BadFile) -> None:
    path = FIXTURES / bad.name

    with pytest.raises(ExportFormatError) as raised:
        read_locations(path, settings_for(path))

    error = raised.value
    message = str(error)
    assert error.path == path
    assert error.line == bad.line
    assert error.column == bad.column
    assert f"{bad.name}:{bad.line}" in message
    for fragment in bad.fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("rows", "line", "column", "fragment"),
    [
        pytest.param(
            [["Magazyn", "Lokalizacja", "Typ składowania"], ["MAG-ŁDZ", "A-1", "suchy"]],
            1,
            "Miejsca paletowe",
            "no capacity column",
            id="no-capacity-columns",
        ),
        pytest.param(
            [
                [
                    "Magazyn",
                    "Typ składowania",
                    "Zajęta powierzchnia m2",
                    "Miejsca paletowe",
                    "Zajęte miejsca",
                ]
            ],
            1,
            "Powierzchnia m2",
            "'Zajęta powierzchnia m2' needs",
            id="occupied-area-without-area",
        ),
        pytest.param(
            [["Magazyn", "Miejsca paletowe", "Zajęte miejsca"], ["MAG-ŁDZ", "10", "2"]],
            1,
            "Typ składowania",
            "default_storage_type",
            id="no-type-column",
        ),
        pytest.param(
            [HEADER, ["MAG-ŁDZ", "A-1", "", "10", "2"]],
            2,
            "Typ składowania",
            "empty storage type",
            id="empty-type",
        ),
        pytest.param(
            [HEADER, ["MAG-ŁDZ", "A-1", "suchy", "", "2"]],
            2,
            "Miejsca paletowe",
            "next to an occupancy of 2",
            id="occupancy-without-capacity",
        ),
        pytest.param(
            [HEADER, ["MAG-ŁDZ", "A-1", "suchy", "", ""]],
            2,
            "Miejsca paletowe",
            "no capacity",
            id="row-without-capacity",
        ),
        pytest.param(
            [HEADER, ["", "A-1", "suchy", "10", "2"]],
            2,
            "Magazyn",
            "empty warehouse code",
            id="empty-warehouse",
        ),
        pytest.param(
            [HEADER, ["???", "A-1", "suchy", "10", "2"]],
            2,
            "Magazyn",
            "'???' cannot be turned into a resource id; map it in 'warehouses'",
            id="warehouse-without-slug",
        ),
    ],
)
def test_bad_rows_rejected(
    tmp_path: Path, rows: list[list[str]], line: int, column: str, fragment: str
) -> None:
    path = write_rows(tmp_path / "lokalizacje.csv", rows)

    with pytest.raises(ExportFormatError) as raised:
        read_locations(path, settings_for(path))

    assert raised.value.line == line
    assert raised.value.column == column
    assert fragment in str(raised.value)


def test_sum_beyond_float_rejected(tmp_path: Path) -> None:
    huge = "1" + "0" * 308
    row = ["MAG-ŁDZ", "A-1", "suchy", huge, "0"]
    path = write_rows(tmp_path / "lokalizacje.csv", [HEADER, row, row])

    with pytest.raises(ExportFormatError) as raised:
        read_locations(path, settings_for(path))

    message = str(raised.value)
    assert "pallet places of warehouse 'magazyn-lodz' add up to inf" in message
    assert "far too large" in message


def test_empty_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "lokalizacje.csv"
    path.write_bytes(b"\r\n;;;;\r\n")

    with pytest.raises(ExportFormatError, match=r"lokalizacje\.csv: the file is empty"):
        read_locations(path, settings_for(path))


def test_explicit_utf8_on_cp1250_rejected(tmp_path: Path) -> None:
    path = tmp_path / "lokalizacje.csv"
    path.write_bytes(LOCATIONS_TEXT.encode("cp1250"))

    with pytest.raises(ExportFormatError) as raised:
        read_locations(path, settings_for(path, encoding="utf-8"))

    assert raised.value.line == 1  # "Typ składowania" in the header
    assert "not valid utf-8" in str(raised.value)
    assert "encoding: cp1250" in str(raised.value)


def test_utf16_export_rejected(tmp_path: Path) -> None:
    path = tmp_path / "lokalizacje.csv"
    path.write_bytes(LOCATIONS_TEXT.encode("utf-16"))

    with pytest.raises(ExportFormatError, match="UTF-16"):
        read_locations(path, settings_for(path))


def test_truncated_csv_row_located(tmp_path: Path) -> None:
    path = tmp_path / "lokalizacje.csv"
    data = LOCATIONS_TEXT.encode("cp1250")
    path.write_bytes(data[: data.index(b"G-PLAC") + 2])

    with pytest.raises(ExportFormatError) as raised:
        read_locations(path, settings_for(path))

    assert raised.value.line == 10
    assert raised.value.column == "Typ składowania"


def test_truncated_xlsx_rejected(tmp_path: Path) -> None:
    whole = write_xlsx(tmp_path / "whole.xlsx", [HEADER, ["MAG-ŁDZ", "A-1", "suchy", 10, 2]])
    path = tmp_path / "lokalizacje.xlsx"
    path.write_bytes(whole.read_bytes()[:700])

    with pytest.raises(ExportFormatError, match=r"lokalizacje\.xlsx: not a readable XLSX"):
        read_locations(path, settings_for(path))


def test_large_export_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "lokalizacje.csv"
    # Wide rows, as WMS exports have, keep the row count and so the test's run time down.
    remark = "regał wjezdny, łańcuch, nośność 1000 kg, strefa kompletacji – " * 4
    rows = 0
    with path.open("w", encoding="cp1250", newline="") as stream:
        stream.write(";".join(HEADER) + ";Uwagi\r\n")
        while stream.tell() < 6 * 1024 * 1024:
            kind = ("suchy", "chłodnia", "ADR")[rows % 3]
            stream.write(f"MAG-{rows % 5};R-{rows:07d};{kind};4;{rows % 5};{remark}\r\n")
            rows += 1
    size = os.path.getsize(path)

    tracemalloc.start()
    try:
        report = read_locations(path, settings_for(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.rows == rows
    assert len(report.amounts) == 5
    assert peak < size / 10


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"warehouses": {"MAG-ŁDZ": "zły/id"}}, "warehouses"),
        ({"storage_types": {"kontener": "frozen"}}, "storage_types.kontener"),
        ({"storage_types": {"  ": "cold"}}, "storage_types"),
        ({"reserve": {"frozen": {"pallet_places": 1}}}, "reserve.frozen.[key]"),
        ({"reserve": {"cold": {"pallet_places": -1}}}, "reserve.cold.pallet_places"),
        ({"reserve": {"cold": {"palety": 1}}}, "reserve.cold.palety"),
        ({"default_storage_type": "suchy"}, "default_storage_type"),
        ({"columns": {"magazyn": "Magazyn"}}, "columns.magazyn"),
        ({"columns": {"location": "MAGAZYN "}}, ""),
        ({"sheet_name": "Arkusz1"}, "sheet_name"),
    ],
)
def test_settings_invalid(overrides: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"path": "lokalizacje.csv", **overrides}

    with pytest.raises(ValidationError) as raised:
        WarehouseSettings.model_validate(values)

    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert field in locations


def test_settings_same_column_twice_named() -> None:
    with pytest.raises(ValidationError, match=r"columns\.warehouse and columns\.location"):
        WarehouseSettings.model_validate({"path": "l.csv", "columns": {"location": "magazyn"}})


# --- the adapter ---------------------------------------------------------------------------------


def make_adapter(tmp_path: Path, **overrides: object) -> tuple[WarehouseAdapter, list[int]]:
    notifications: list[int] = []
    context = AdapterContext(
        member="test-warehouse",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=lambda: notifications.append(1),
        clock=lambda: datetime.now(UTC),
    )
    values: dict[str, object] = {
        "path": "lokalizacje.csv",
        "warehouses": WAREHOUSES,
        "stable_seconds": 0,
    }
    values.update(overrides)
    settings = WarehouseSettings.model_validate(values)
    return WarehouseAdapter("magazyny", settings, context), notifications


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == level]


async def test_adapter_reads_export(tmp_path: Path) -> None:
    adapter, notifications = make_adapter(tmp_path)
    (tmp_path / "lokalizacje.csv").write_bytes(LOCATIONS_TEXT.encode("cp1250"))

    await adapter.poll()

    assert adapter.collect() == EXPECTED
    assert adapter.withheld_kinds() == {}
    assert notifications == [1]
    [health] = adapter.health()
    assert health.state == "connected"
    assert health.detail is None


async def test_adapter_bad_version_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, notifications = make_adapter(tmp_path)
    path = tmp_path / "lokalizacje.csv"
    path.write_text(LOCATIONS_TEXT, encoding="utf-8")
    await adapter.poll()

    path.write_text(LOCATIONS_TEXT.replace("Mroźnia", "zamrażarka"), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="adapters"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == EXPECTED
    assert notifications == [1]
    [message] = messages(caplog, logging.ERROR)
    assert "lokalizacje.csv:6" in message
    assert "'zamrażarka'" in message
    assert "'storage_types'" in message
    assert "last warehouse locations export read stays in use" in message
    [health] = adapter.health()
    assert health.state == "disconnected"
    assert health.errors == {"invalid_exports": 1}


async def test_adapter_over_capacity_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, notifications = make_adapter(tmp_path)
    (tmp_path / "lokalizacje.csv").write_bytes((FIXTURES / "over_capacity.csv").read_bytes())

    with caplog.at_level(logging.WARNING, logger="adapters"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == [storage("magazyn-lodz", pallets(30, "ambient"))]
    [warning] = messages(caplog, logging.WARNING)
    assert "2 of 4 locations hold more than their capacity" in warning
    assert "'A-01-02' on line 3" in warning
    assert notifications == [1]


async def test_adapter_reads_newest_xlsx_in_folder(tmp_path: Path) -> None:
    folder = tmp_path / "eksport"
    folder.mkdir()
    older = write_xlsx(folder / "lokalizacje_1.xlsx", [HEADER, ["MAG-ŁDZ", "A", "suchy", 9, 0]])
    os.utime(older, (1_700_000_000, 1_700_000_000))
    write_xlsx(folder / "lokalizacje_2.xlsx", [HEADER, ["MAG-ŁDZ", "A", "chłodnia", 9, 1]])
    (folder / "lokalizacje_3.xlsx.tmp").write_bytes(b"still being written")
    adapter, _ = make_adapter(tmp_path, path="eksport", pattern="*.xlsx")

    await adapter.poll()

    assert adapter.collect() == [storage("magazyn-lodz", pallets(8, "cold"))]


async def test_adapter_missing_export_offers_nothing(tmp_path: Path) -> None:
    adapter, notifications = make_adapter(tmp_path)

    await adapter.poll()

    assert adapter.collect() == []
    assert adapter.withheld_kinds() == {}
    [health] = adapter.health()
    assert health.detail is not None
    assert health.detail == "the file does not exist"
    assert health.source == str(tmp_path / "lokalizacje.csv")
    assert notifications == []


def test_example_config_valid() -> None:
    example = REPO_ROOT / "config" / "adapters" / "warehouse.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = WarehouseSettings.model_validate(values)

    assert entry["type"] == "warehouse"
    assert settings.warehouses == {"MAG-ŁDZ": "magazyn-lodz", "MAG-GDA": "magazyn-gdansk"}
    assert settings.reserve["cold"].pallet_places == 4
    assert settings.storage_type_words()["kontener adr"] == "hazardous"
    assert settings.storage_type_words()["chłodnia"] == "cold"
