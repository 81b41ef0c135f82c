"""Writers of generated CSV and XLSX exports shaped like the fixtures under ``tests/fixtures``.

Each writer fills a file up to about ``target_bytes`` with rows in the Polish dialect (``;``
between fields, decimal commas, CRLF line ends, Polish letters) and returns the number of data
rows. ``items`` is the number of distinct item codes or people, because the parsers keep one
total per item and their memory grows with it, not with the number of rows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

ROWS_PER_WRITE = 1000
XLSX_CALIBRATION_ROWS = 20_000

MACHINES = ("FREZ-01", "FREZ-02", "TOK-CNC-01", "LASER-02", "PRASA 03", "SPAW-ROB-01", "GIĘT-04")
PRODUCTS = ("łożysko kulkowe", "żuraw", "wąż hydrauliczny", "obudowa; pokrywa", "wspornik ścienny")
PLAN_START = datetime(2026, 3, 2, 6, 0)

CITIES = ("Łódź", "Gdańsk", "Wrocław", "Poznań", "Kraków", "Żerań", "Bielsko-Biała", "Częstochowa")
STORAGE_TYPES = ("suchy", "Suchy", "normalny", "chłodnia", "Mroźnia", "ADR")
NOTES = (
    "",
    "",
    "regały rzędowe, wysokość 8 m",
    '"+2…+8 °C; żywność"',
    "plac utwardzony, źle oświetlony",
)

# Item category: code prefix, name, unit.
CATEGORIES = (
    ("BL-DC01", "Blacha DC01 2 mm, arkusz 1250×2500", "ark."),
    ("PR-KW", '"Pręt kwadratowy 40 mm; stal S235"', "kg"),
    ("ŚR-M8x30", "Śruba M8×30 ocynk, kl. 8.8", "szt."),
    ("USZ-ŁOŻ", "Łożysko kulkowe 6204-2RS", "szt."),
    ("FARBA-RAL", "Farba proszkowa RAL 7035, szara", "kg"),
)

FIRST_NAMES = ("Jan", "Anna", "Piotr", "Małgorzata", "Łukasz", "Jędrzej", "Zofia", "Paweł")
LAST_NAMES = ("Kowalski", "Nowak", "Wiśniewski", "Wójcik", "Żółkiewski", "Ślązak", "Dąbrowski")
TEAMS = (
    ("Automatyka", "PLC Siemens, SCADA WinCC"),
    ("Dział IT", '"Windows Server; Active Directory"'),
    ("Robotyka", "Robotyka KUKA, Python"),
)
BOOKING_KINDS = ("projekt", "urlop", "szkolenie", "Projekt", "delegacja")
DAY_SHARES = ("", "", "50", "0,5", "50 %")
CALENDAR_START = datetime(2026, 11, 2)


def write_text_rows(
    path: Path, codec: str, header: str, make_row: Callable[[int], str], target_bytes: int
) -> int:
    """Write ``header`` and rows ``make_row(0)``, ``make_row(1)``... until ``target_bytes``."""
    written = 0
    rows = 0
    with path.open("wb") as stream:
        written += stream.write((header + "\r\n").encode(codec))
        while written < target_bytes:
            batch = "".join(make_row(rows + index) + "\r\n" for index in range(ROWS_PER_WRITE))
            written += stream.write(batch.encode(codec))
            rows += ROWS_PER_WRITE
    return rows


def plan_order(index: int) -> tuple[str, str, datetime, datetime, float]:
    """Return order number, machine code, start, end and quantity of production order ``index``."""
    machine = MACHINES[index % len(MACHINES)]
    start = PLAN_START + timedelta(hours=2 * (index // len(MACHINES)))
    end = start + timedelta(hours=1 + index % 8)
    order = f"ZP/2026/{index:07d} {PRODUCTS[index % len(PRODUCTS)]}"
    return order, machine, start, end, 12.5 + index % 40


def schedule_row(index: int) -> str:
    order, machine, start, end, quantity = plan_order(index)
    date_format = "%Y-%m-%d %H:%M" if index % 7 == 0 else "%d.%m.%Y %H:%M"
    order_cell = f'"{order}"' if ";" in order else order
    amount = f"{quantity:.1f}".replace(".", ",")
    return f"{order_cell};{machine};{start:{date_format}};{end:{date_format}};{amount}"


def write_schedule_csv(path: Path, target_bytes: int, items: int) -> int:
    header = "Zlecenie;Maszyna;Początek;Koniec;Ilość szt."
    return write_text_rows(path, "cp1250", header, schedule_row, target_bytes)


def write_schedule_xlsx(path: Path, target_bytes: int, items: int) -> int:
    """Write a plan workbook with date cells, with a row count sized from a calibration file."""
    with tempfile.TemporaryDirectory() as folder:
        sample = Path(folder) / "calibration.xlsx"
        _write_plan_workbook(sample, XLSX_CALIBRATION_ROWS)
        bytes_per_row = sample.stat().st_size / XLSX_CALIBRATION_ROWS
    rows = max(1, int(target_bytes / bytes_per_row))
    _write_plan_workbook(path, rows)
    return rows


def _write_plan_workbook(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Plan")
    sheet.append(["Zlecenie", "Maszyna", "Początek", "Koniec", "Ilość szt."])
    for index in range(rows):
        sheet.append(list(plan_order(index)))
    workbook.save(path)


def warehouse_row(index: int) -> str:
    warehouse = f"MAG-{index % 12:02d} {CITIES[index % len(CITIES)]}"
    location = f"{chr(65 + index % 20)}-{index // 20 % 100:02d}-{index % 7:02d}"
    storage_type = STORAGE_TYPES[index % len(STORAGE_TYPES)]
    note = NOTES[index % len(NOTES)]
    if index % 5 == 4:
        area = 1000 + index % 900
        area_text = f"{area // 1000} {area % 1000:03d},5"
        return f"{warehouse};{location};{storage_type};;;{area_text};130,25;{note}"
    capacity = 12 + index % 24
    return f"{warehouse};{location};{storage_type};{capacity};{index % (capacity + 1)};;;{note}"


def write_warehouse_csv(path: Path, target_bytes: int, items: int) -> int:
    header = (
        "Magazyn;Lokalizacja;Typ składowania;Miejsca paletowe;Zajęte miejsca;"
        "Powierzchnia m2;Zajęta powierzchnia m2;Uwagi"
    )
    return write_text_rows(path, "utf-8", header, warehouse_row, target_bytes)


def write_stock_csv(path: Path, target_bytes: int, items: int) -> int:
    """Write a stock list whose rows repeat ``items`` item codes over many warehouses."""

    def stock_row(index: int) -> str:
        item = index % items
        prefix, name, unit = CATEGORIES[item % len(CATEGORIES)]
        warehouse = f"MAG-{index // items % 40:02d} {CITIES[index // items % len(CITIES)]}"
        if unit == "ark." and index % 2:
            unit = "ark"
        quantity = f"{index % 3 + 1} {index % 1000:03d},5"
        price = f"{14 + item % 300},{index % 100:02d}"
        reserve = "" if index % 6 == 0 else str(index % 50)
        return f"{prefix}-{item:05d};{name};{warehouse};{quantity};{unit};{reserve};{price}"

    header = "Indeks;Nazwa;Magazyn;Ilość;J.m.;Rezerwa;Cena"
    return write_text_rows(path, "utf-8", header, stock_row, target_bytes)


def write_it_team_csv(path: Path, target_bytes: int, items: int) -> int:
    """Write a team calendar of ``items`` people, each always in the same team."""

    def calendar_row(index: int) -> str:
        person = index % items
        name = (
            f"{FIRST_NAMES[person % len(FIRST_NAMES)]} "
            f"{LAST_NAMES[person // len(FIRST_NAMES) % len(LAST_NAMES)]} {person:05d}"
        )
        team, skills = TEAMS[person % len(TEAMS)]
        if index % 5 == 4:
            return f"{team};{name};{skills};;;;"
        start = CALENDAR_START + timedelta(days=index * 7 % 70)
        end = start + timedelta(days=index % 10)
        date_format = "%Y-%m-%d" if index % 9 == 0 else "%d.%m.%Y"
        kind = BOOKING_KINDS[index % len(BOOKING_KINDS)]
        share = DAY_SHARES[index % len(DAY_SHARES)]
        return f"{team};{name};{skills};{start:{date_format}};{end:{date_format}};{kind};{share}"

    header = "Zespół;Osoba;Umiejętności;Od;Do;Rodzaj;Procent"
    return write_text_rows(path, "utf-8", header, calendar_row, target_bytes)
