"""Tabular exports (CSV and XLSX) read row by row, with bounded memory.

``read_table`` picks the reader by the file's extension: ``.xlsx`` and ``.xlsm`` are read with
openpyxl in read-only mode (the sheet is streamed, not loaded), anything else as CSV in the Polish
dialect (``adapters.exports.polish_csv``). CSV cells are strings. XLSX cells keep their types, so
a date cell arrives as ``datetime`` and a number as ``int`` or ``float``. The module
``adapters.exports.columns`` turns either into checked values.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import BinaryIO

from pydantic import Field, field_validator

from adapters.base import AdapterSettings
from adapters.errors import ExportFormatError
from adapters.exports.adapter import ExportSettings
from adapters.exports.polish_csv import DELIMITER_CANDIDATES, Encoding
from adapters.exports.progress import open_export
from adapters.exports.text_files import detect_delimiter_in, detect_encoding, stream_rows

Cell = str | int | float | bool | datetime | date | time | None
XLSX_SUFFIXES = (".xlsx", ".xlsm")
UNSUPPORTED_SUFFIXES = {
    ".xls": "the old binary Excel format (.xls) is not supported; save the file as .xlsx or CSV",
    ".ods": "OpenDocument spreadsheets (.ods) are not supported; save the file as .xlsx or CSV",
}


@dataclass(frozen=True, slots=True)
class TableRow:
    """One non-blank row and the line (CSV) or row number (XLSX) where it starts, 1-based."""

    line: int
    cells: tuple[Cell, ...]


class TableFormat(AdapterSettings):
    """Reading options of a CSV or XLSX table: CSV encoding and delimiter, XLSX worksheet."""

    encoding: Encoding = Field(default="auto", description="CSV only; XLSX is always Unicode.")
    delimiter: str = Field(default=";", description="CSV only: ';', ',', a tab, or 'auto'.")
    sheet: str | None = Field(
        default=None, description="XLSX only: the worksheet to read; default the first."
    )

    @field_validator("delimiter")
    @classmethod
    def _check_delimiter(cls, value: str) -> str:
        if value != "auto" and value not in DELIMITER_CANDIDATES:
            raise ValueError(f"delimiter {value!r} is not ';', ',', a tab or 'auto'")
        return value


class TableSettings(ExportSettings, TableFormat):
    """Settings of an adapter that reads a CSV or XLSX export."""


def read_table(path: Path, settings: TableFormat) -> Iterator[TableRow]:
    """Yield the non-blank rows of ``path``, header first; raise ``ExportFormatError``."""
    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_SUFFIXES:
        raise ExportFormatError(path, UNSUPPORTED_SUFFIXES[suffix])
    if suffix in XLSX_SUFFIXES:
        return _xlsx_rows(path, settings.sheet)
    return _csv_rows(path, settings)


def _csv_rows(path: Path, settings: TableFormat) -> Iterator[TableRow]:
    codec = detect_encoding(path, settings.encoding)
    delimiter = settings.delimiter
    if delimiter == "auto":
        delimiter = detect_delimiter_in(path, codec)
    for row in stream_rows(path, codec, delimiter):
        yield TableRow(row.line, row.cells)


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[TableRow]:
    with open_export(path) as stream:
        yield from _workbook_rows(path, stream, sheet)


def _workbook_rows(path: Path, stream: BinaryIO, sheet: str | None) -> Iterator[TableRow]:
    # Imported here so that CSV-only agents do not pay for loading openpyxl.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles and extensions it ignores; the values are unaffected.
            warnings.simplefilter("ignore")
            workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as error:
        raise ExportFormatError(
            path, f"not a readable XLSX workbook ({error}); export the file again as .xlsx or CSV"
        ) from error
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            names = ", ".join(repr(name) for name in workbook.sheetnames)
            raise ExportFormatError(
                path, f"worksheet {sheet!r} not found; the workbook has {names}. Fix 'sheet'"
            )
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            cells = tuple(_xlsx_cell(value) for value in values)
            if any(cell is not None and str(cell).strip() for cell in cells):
                yield TableRow(number, cells)
    finally:
        workbook.close()


def _xlsx_cell(value: object) -> Cell:
    if value is None or isinstance(value, str | int | float | bool | datetime | date | time):
        return value
    # Formula errors such as #N/A and other rare types arrive as objects; keep their text.
    return str(value)
