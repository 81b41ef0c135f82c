"""Tests of the stock list parser and the stock adapter on real files."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from openpyxl import Workbook
from pydantic import ValidationError

from adapters.base import AdapterContext, ConnectionState, SupplyStock
from adapters.errors import ExportFormatError
from adapters.stock import StockAdapter, StockSettings, read_stock
from kooperant.protocol import Amount, Price

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stock"
STOCK_TEXT = (FIXTURES / "stany.csv").read_text(encoding="utf-8")
ITEMS = {"BL-DC01-2": "blacha-dc01-2mm"}
NOW = datetime(2026, 12, 7, 8, 20, tzinfo=UTC)

# stany.csv read with ITEMS and the default settings. The sheets are in two warehouses:
# (340 + 60) - (40 + 20) = 340, at (142.5 * 340 + 138 * 60) / 400 = 141.825 PLN.
EXPECTED_STOCK = [
    SupplyStock(
        resource="blacha-dc01-2mm",
        name="Blacha DC01 2 mm, arkusz 1250×2500",
        amounts=(Amount("surplus", 340.0, "ark."),),
        price=Price(141.825, "PLN", "ark."),
    ),
    SupplyStock(
        resource="farba-ral7035",
        name="Farba proszkowa RAL 7035, szara",
        amounts=(Amount("surplus", 65.0, "kg"),),
    ),
    SupplyStock(
        resource="pr-kw-40",
        name="Pręt kwadratowy 40 mm; stal S235",
        amounts=(Amount("surplus", 1250.5, "kg"),),
        price=Price(6.85, "PLN", "kg"),
    ),
]


def settings_for(path: Path, **overrides: object) -> StockSettings:
    values: dict[str, object] = {"path": str(path), "items": ITEMS}
    values.update(overrides)
    return StockSettings.model_validate(values)


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding=encoding)
    return path


def fixture_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(STOCK_TEXT, newline=""), delimiter=";"))


def read_error(path: Path, **overrides: object) -> ExportFormatError:
    with pytest.raises(ExportFormatError) as raised:
        read_stock(path, settings_for(path, **overrides))
    return raised.value


# --- the parser ----------------------------------------------------------------------------------


def test_read_stock_fixture() -> None:
    path = FIXTURES / "stany.csv"

    assert read_stock(path, settings_for(path)) == EXPECTED_STOCK


@pytest.mark.parametrize("encoding", ["cp1250", "utf-8-sig"])
def test_read_stock_other_encodings(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "stany.csv"
    path.write_text(STOCK_TEXT, encoding=encoding, newline="")

    assert read_stock(path, settings_for(path)) == EXPECTED_STOCK


def test_read_stock_xlsx_typed_cells(tmp_path: Path) -> None:
    path = tmp_path / "stany.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Indeks", "Nazwa", "Magazyn", "Ilość", "J.m.", "Stan minimalny", "Cena"])
    sheet.append(["BL-DC01-2", "Blacha DC01 2 mm", "MAG-GŁ", 340, "ark.", 40, 142.5])
    sheet.append(["BL-DC01-2", "Blacha DC01 2 mm", "MAG-2 Żerań", 60.0, "ark.", 20, 138])
    sheet.append([4711, "Uszczelka EPDM 4711", "MAG-GŁ", 25.5, "m", None, None])
    workbook.save(path)

    stock = read_stock(path, settings_for(path))

    assert stock == [
        SupplyStock(
            "4711",
            "Uszczelka EPDM 4711",
            (Amount("surplus", 25.5, "m"),),
        ),
        SupplyStock(
            "blacha-dc01-2mm",
            "Blacha DC01 2 mm",
            (Amount("surplus", 340.0, "ark."),),
            Price(141.825, "PLN", "ark."),
        ),
    ]


def test_read_stock_reserve_alternative_header(tmp_path: Path) -> None:
    rows = fixture_rows()
    rows[0][5] = "Stan minimalny"
    path = write_csv(tmp_path / "stany.csv", rows)

    assert read_stock(path, settings_for(path)) == EXPECTED_STOCK


@pytest.mark.parametrize("price", ["142,50 zł", "142,50 PLN", "142,50zł", "142,50 ZŁ"])
def test_read_stock_price_with_currency(tmp_path: Path, price: str) -> None:
    path = write_csv(
        tmp_path / "stany.csv",
        [
            ["Indeks", "Nazwa", "Ilość", "J.m.", "Rezerwa", "Cena"],
            ["BL-1", "Blacha", "10", "ark", "2", price],
        ],
    )

    [supply] = read_stock(path, settings_for(path))

    assert supply.price == Price(142.5, "PLN", "ark")


def test_read_stock_price_other_currency_rejected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "stany.csv",
        [
            ["Indeks", "Nazwa", "Ilość", "J.m.", "Rezerwa", "Cena"],
            ["BL-1", "Blacha", "10", "ark", "2", "30 EUR"],
        ],
    )

    with pytest.raises(ExportFormatError, match="invalid price '30 EUR'"):
        read_stock(path, settings_for(path))


def test_read_stock_default_reserve_without_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "stany.csv",
        [
            ["Indeks", "Nazwa", "Ilość", "J.m."],
            ["PR-KW-40", "Pręt kwadratowy 40 mm", "1 250,5", "kg"],
            ["PR-KW-40", "Pręt kwadratowy 40 mm", "100", "kg"],
            ["ŚR-M8x30", "Śruba M8×30", "90", "szt."],
        ],
    )

    stock = read_stock(path, settings_for(path, reserve=100))

    # The default reserve applies once per item, not once per row.
    assert stock == [
        SupplyStock("pr-kw-40", "Pręt kwadratowy 40 mm", (Amount("surplus", 1250.5, "kg"),))
    ]


def test_read_stock_min_surplus() -> None:
    path = FIXTURES / "stany.csv"

    stock = read_stock(path, settings_for(path, min_surplus=100))

    assert [item.resource for item in stock] == ["blacha-dc01-2mm", "pr-kw-40"]


def test_read_stock_warehouse_filter() -> None:
    path = FIXTURES / "stany.csv"

    stock = read_stock(path, settings_for(path, warehouses=["mag-2 żerań"], currency="EUR"))

    assert stock == [
        SupplyStock(
            "blacha-dc01-2mm",
            "Blacha DC01 2 mm, arkusz 1250×2500",
            (Amount("surplus", 40.0, "ark"),),
            Price(138.0, "EUR", "ark"),
        ),
        SupplyStock(
            "farba-ral7035", "Farba proszkowa RAL 7035, szara", (Amount("surplus", 65.0, "kg"),)
        ),
    ]


def test_warehouse_filter_without_column() -> None:
    path = FIXTURES / "bad_number.csv"

    error = read_error(path, warehouses=["MAG-GŁ"])

    assert error.line == 1
    assert "'Magazyn'" in str(error)
    assert "warehouses" in str(error)


def test_read_stock_header_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "stany.csv", [fixture_rows()[0]])

    assert read_stock(path, settings_for(path)) == []


def test_empty_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    path.write_bytes(b"")

    error = read_error(path)

    assert error.path == path
    assert "empty" in str(error)


def test_missing_column_rejected() -> None:
    error = read_error(FIXTURES / "missing_column.csv")

    assert error.line == 1
    assert error.column == "Ilość"
    assert "'Stan'" in str(error)
    assert "columns.quantity" in str(error)


def test_bad_number_names_line() -> None:
    error = read_error(FIXTURES / "bad_number.csv")

    assert error.line == 3
    assert error.column == "Ilość"
    assert "'12,5,0'" in str(error)
    assert "bad_number.csv:3" in str(error)


def test_unit_mismatch_names_both_lines() -> None:
    error = read_error(FIXTURES / "unit_mismatch.csv")

    assert error.line == 4
    assert error.column == "J.m."
    assert "'PR-KW-40'" in str(error)
    assert "'mb'" in str(error)
    assert "'kg' on line 2" in str(error)


@pytest.mark.parametrize(
    ("cells", "column", "expected"),
    [
        (["PR-KW-40", "Pręt", "10", "kg", "-5", ""], "Rezerwa", "at least 0"),
        (["PR-KW-40", "Pręt", "10", "kg", "0", "ok. 7 zł"], "Cena", "'ok. 7 zł'"),
        (["PR-KW-40", "Pręt", "", "kg", "0", ""], "Ilość", "invalid quantity ''"),
        (["PR-KW-40", "Pręt", "10", " ", "0", ""], "J.m.", "empty unit"),
        (["  ", "Pręt", "10", "kg", "0", ""], "Indeks", "empty item code"),
        (["???", "Pręt", "10", "kg", "0", ""], "Indeks", "'???'"),
    ],
)
def test_bad_cell_rejected(tmp_path: Path, cells: list[str], column: str, expected: str) -> None:
    header = ["Indeks", "Nazwa", "Ilość", "J.m.", "Rezerwa", "Cena"]
    valid = ["ŁĄCZNIK-12", "Łącznik kątowy", "300", "szt.", "20", "1,20"]
    path = write_csv(tmp_path / "stany.csv", [header, valid, cells])

    error = read_error(path)

    assert error.line == 3
    assert error.column == column
    assert expected in str(error)


def test_codes_with_same_id_rejected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "stany.csv",
        [
            ["Indeks", "Nazwa", "Ilość", "J.m."],
            ["PR KW 40", "Pręt kwadratowy", "10", "kg"],
            ["pr-kw-40", "Pręt kwadratowy", "5", "kg"],
        ],
    )

    error = read_error(path)

    assert error.line == 3
    assert "'PR KW 40' (line 2)" in str(error)
    assert "'pr-kw-40'" in str(error)
    assert "items" in str(error)


def test_utf16_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + STOCK_TEXT.encode("utf-16-le"))

    error = read_error(path)

    assert "UTF-16" in str(error)


def test_wrong_encoding_setting_names_line(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    path.write_text(STOCK_TEXT, encoding="cp1250", newline="")

    error = read_error(path, encoding="utf-8")

    assert error.line == 1  # "Ilość" in the header is not UTF-8
    assert "not valid utf-8" in str(error)


def test_truncated_csv_rejected(tmp_path: Path) -> None:
    data = STOCK_TEXT.encode("utf-8")
    path = tmp_path / "stany.csv"
    path.write_bytes(data[: data.index(b";1 250,5;")])  # inside line 3

    error = read_error(path)

    assert error.line == 3
    assert error.column == "Ilość"


def test_truncated_xlsx_rejected(tmp_path: Path) -> None:
    path = tmp_path / "stany.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Indeks", "Nazwa", "Ilość", "J.m."])
    workbook.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    error = read_error(path)

    assert "not a readable XLSX workbook" in str(error)


def test_large_export_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "stany.csv"
    with path.open("w", encoding="cp1250", newline="") as stream:
        stream.write("Indeks;Nazwa;Magazyn;Ilość;J.m.;Rezerwa;Cena\r\n")
        for number in range(80_000):
            item = number % 2000
            stream.write(
                f"MAT-{item:05d};Materiał zużywalny nr {item}, opakowanie zbiorcze;"
                f"MAG-{number % 60:02d};{number % 97},5;szt.;1;{item % 50},25\r\n"
            )
    size = path.stat().st_size
    assert size > 5_000_000

    tracemalloc.start()
    try:
        stock = read_stock(path, settings_for(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(stock) == 2000
    # About 1.5 MiB of the peak is the encoding check's chunk, the same for a file of any size.
    assert peak < size / 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"items": {"BL-DC01-2": "bad/id"}}, "items"),
        ({"reserve": -1}, "reserve"),
        ({"min_surplus": float("nan")}, "min_surplus"),
        ({"currency": "zł"}, "currency"),
        ({"columns": {"reserve": []}}, "columns.reserve"),
        ({"columns": {"qty": "Ilość"}}, "columns.qty"),
        ({"delimiter": "|"}, "delimiter"),
        ({"pth": "stany.csv"}, "pth"),
    ],
)
def test_settings_invalid(overrides: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"path": "stany.csv", **overrides}

    with pytest.raises(ValidationError) as raised:
        StockSettings.model_validate(values)

    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert any(location.startswith(field) for location in locations)


# --- the adapter ----------------------------------------------------------------------------------


def make_adapter(tmp_path: Path, notifications: list[int], **overrides: object) -> StockAdapter:
    context = AdapterContext(
        member="test-member-stock",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=lambda: notifications.append(1),
        clock=lambda: NOW,
    )
    values: dict[str, object] = {"path": "stany.csv", "items": ITEMS, "stable_seconds": 0}
    values.update(overrides)
    return StockAdapter("stany", StockSettings.model_validate(values), context)


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_adapter_reads_stock(tmp_path: Path) -> None:
    notifications: list[int] = []
    adapter = make_adapter(tmp_path, notifications)
    (tmp_path / "stany.csv").write_text(STOCK_TEXT, encoding="cp1250", newline="")

    await adapter.poll()

    assert adapter.collect() == EXPECTED_STOCK
    assert adapter.withheld_kinds() == {}
    [health] = adapter.health()
    assert health.state is ConnectionState.CONNECTED
    assert health.detail is None
    assert len(notifications) == 1


async def test_adapter_bad_version_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications: list[int] = []
    adapter = make_adapter(tmp_path, notifications)
    path = tmp_path / "stany.csv"
    path.write_text(STOCK_TEXT, encoding="utf-8", newline="")
    await adapter.poll()

    path.write_bytes((FIXTURES / "bad_number.csv").read_bytes())
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == EXPECTED_STOCK
    [message] = error_messages(caplog)
    assert "stany.csv:3" in message
    assert "'12,5,0'" in message
    assert "last stock list read stays in use" in message
    [health] = adapter.health()
    assert health.state is ConnectionState.DISCONNECTED
    assert health.errors == {"invalid_exports": 1}
    assert health.detail is not None
    assert "'12,5,0'" in health.detail

    path.write_text(STOCK_TEXT.replace("340;ark.", "940;ark."), encoding="utf-8", newline="")
    await adapter.poll()

    [sheets, *_] = adapter.collect()
    assert isinstance(sheets, SupplyStock)
    assert sheets.amounts == (Amount("surplus", 940.0, "ark."),)
    assert len(notifications) == 2


async def test_adapter_missing_file_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = make_adapter(tmp_path, [])

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == []
    assert adapter.withheld_kinds() == {}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "stock list" in message
    assert "not found" in message


def test_example_config_valid() -> None:
    example = FIXTURES.parents[2] / "config" / "adapters" / "stock.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = StockSettings.model_validate(values)

    assert entry["type"] == "stock"
    assert settings.items == {"BL-DC01-2": "blacha-dc01-2mm"}
    assert settings.columns.reserve == ("Rezerwa", "Stan minimalny")


def test_endless_number_rejected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "stany.csv",
        [["Indeks", "Nazwa", "Ilość", "J.m."], ["PR-KW-40", "Pręt kwadratowy", "9" * 400, "kg"]],
    )

    error = read_error(path)

    assert error.line == 2
    assert error.column == "Ilość"
    assert "expected a number" in str(error)
