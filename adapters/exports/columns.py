"""Column mapping of tabular exports: finding columns by header text and reading checked values.

An adapter describes its columns with a settings model whose fields hold the header text, for
example ``ScheduleColumns(order="Zlecenie", machine="Maszyna")``, or a list of alternative
header texts, of which the first that the file has is used. ``ColumnLayout`` finds them in the
header row and reads a row's cells as text, numbers, dates or times. Every failure is an
``ExportFormatError`` naming the file, the line, the column and what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from adapters.errors import ExportFormatError
from adapters.exports.polish_csv import (
    find_column,
    is_ambiguous_decimal,
    parse_decimal,
    parse_local_datetime,
)
from adapters.exports.tables import Cell, TableRow

DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y")


def cell_text(cell: Cell) -> str:
    """Return a cell as stripped text; an XLSX whole number ``12.0`` becomes ``12``."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


class ColumnLayout:
    """Positions of the mapped columns in one file's header, and typed access to a row's cells."""

    def __init__(
        self,
        header: TableRow,
        path: Path,
        columns: BaseModel,
        optional: Collection[str] = (),
    ) -> None:
        self.path = path
        self.columns = columns
        names = [cell_text(cell) for cell in header.cells]
        self.positions: dict[str, int] = {}
        self.headers: dict[str, str] = {}
        """The configured header text that matched, by field, for error messages."""
        for field in type(columns).model_fields:
            expected = _header_texts(getattr(columns, field))
            if not expected:
                continue
            found_text, index = _find_any(names, expected)
            if index is not None:
                self.positions[field] = index
                self.headers[field] = found_text
            elif field not in optional:
                found = ", ".join(repr(name) for name in names)
                alternatives = " or ".join(repr(text) for text in expected)
                raise ExportFormatError(
                    path,
                    f"missing column {alternatives}; the header has {found}. Rename the column in "
                    f"the export or set 'columns.{field}' in the adapter settings",
                    line=header.line,
                    column=expected[0],
                )

    def has(self, field: str) -> bool:
        """Return whether the file has the column mapped to ``field``."""
        return field in self.positions

    def cell(self, row: TableRow, field: str) -> Cell:
        index = self.positions.get(field)
        if index is None or index >= len(row.cells):
            return None
        return row.cells[index]

    def text(self, row: TableRow, field: str, label: str) -> str:
        """Return the non-empty text of ``field``; ``label`` names it in the error."""
        text = cell_text(self.cell(row, field))
        if not text:
            raise self.error(row, field, f"empty {label}; every row needs one")
        return text

    def optional_text(self, row: TableRow, field: str) -> str | None:
        return cell_text(self.cell(row, field)) or None

    def number(
        self,
        row: TableRow,
        field: str,
        label: str,
        *,
        minimum: float | None = None,
        suffixes: Sequence[str] = (),
    ) -> float:
        """Return the number in ``field``, written with a decimal comma or point.

        A unit in ``suffixes`` after the number, such as "zł" after a price, is ignored.
        """
        cell = self.cell(row, field)
        if isinstance(cell, int | float) and not isinstance(cell, bool):
            value: float | None = float(cell)
        else:
            value = parse_decimal(_without_suffix(cell_text(cell), suffixes))
        if value is None and is_ambiguous_decimal(cell_text(cell)):
            raise self.error(
                row,
                field,
                f"ambiguous {label} {cell_text(cell)!r}: a dot before three digits may separate "
                "thousands or decimals; write thousands without a dot (1234 or 1 234) and "
                "decimals with a comma (1,234)",
            )
        # A text of hundreds of digits parses as infinity, which no amount may carry.
        if value is None or not math.isfinite(value):
            raise self.error(
                row,
                field,
                f"invalid {label} {cell_text(cell)!r}: expected a number such as 12 or 1 234,5",
            )
        if minimum is not None and value < minimum:
            raise self.error(row, field, f"invalid {label} {value:g}: must be at least {minimum:g}")
        return value

    def optional_number(
        self,
        row: TableRow,
        field: str,
        label: str,
        *,
        minimum: float | None = None,
        suffixes: Sequence[str] = (),
    ) -> float | None:
        if not cell_text(self.cell(row, field)):
            return None
        return self.number(row, field, label, minimum=minimum, suffixes=suffixes)

    def date(self, row: TableRow, field: str, label: str, formats: Sequence[str]) -> date:
        """Return the date in ``field``: an XLSX date cell or text in one of ``formats``."""
        cell = self.cell(row, field)
        if isinstance(cell, datetime):
            return cell.date()
        if isinstance(cell, date):
            return cell
        text = self.text(row, field, label)
        for date_format in formats:
            try:
                return _parse_date(text, date_format)
            except ValueError:
                continue
        raise self.error(row, field, _invalid_date(label, text, formats))

    def local_datetime(
        self,
        row: TableRow,
        field: str,
        label: str,
        formats: Sequence[str],
        timezone: ZoneInfo,
    ) -> datetime:
        """Return the local wall time in ``field`` as UTC (see ``parse_local_datetime``)."""
        cell = self.cell(row, field)
        if isinstance(cell, datetime):
            return cell.replace(tzinfo=timezone, fold=0).astimezone(UTC)
        if isinstance(cell, date):
            return datetime.combine(cell, time(), timezone).astimezone(UTC)
        text = self.text(row, field, label)
        value = parse_local_datetime(text, formats, timezone)
        if value is None:
            raise self.error(row, field, _invalid_date(label, text, formats))
        return value

    def error(self, row: TableRow, field: str, message: str) -> ExportFormatError:
        texts = _header_texts(getattr(self.columns, field))
        column = self.headers.get(field) or (texts[0] if texts else field)
        return ExportFormatError(self.path, message, line=row.line, column=column)


# The common date formats parsed without strptime, which is slower: 1.7 s against 1.0 s of CPU for
# a calendar export of 100,000 rows. Each pattern accepts what strptime accepts for its format: 1
# or 2 digit days and months, and a 4 digit year.
_QUICK_DATE_FORMATS = {
    "%d.%m.%Y": (re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})"), (3, 2, 1)),
    "%Y-%m-%d": (re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"), (1, 2, 3)),
}


def _parse_date(text: str, date_format: str) -> date:
    """Return the date in ``text`` written in ``date_format``; raise ``ValueError`` if it is not."""
    quick = _QUICK_DATE_FORMATS.get(date_format)
    if quick is None:
        return datetime.strptime(text, date_format).date()
    pattern, (year, month, day) = quick
    match = pattern.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} does not match {date_format!r}")
    return date(int(match[year]), int(match[month]), int(match[day]))


def _header_texts(expected: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return the header texts a column setting accepts: one text, or a list of alternatives."""
    if expected is None:
        return ()
    if isinstance(expected, str):
        return (expected,)
    return tuple(expected)


def _find_any(names: Sequence[str], expected: Sequence[str]) -> tuple[str, int | None]:
    """Return the first text of ``expected`` that the header has, and its index (None if none)."""
    for text in expected:
        index = find_column(names, text)
        if index is not None:
            return text, index
    return expected[0], None


def _without_suffix(text: str, suffixes: Sequence[str]) -> str:
    lowered = text.casefold()
    for suffix in suffixes:
        if lowered.endswith(suffix.casefold()):
            return text[: len(text) - len(suffix)].strip()
    return text


def _invalid_date(label: str, text: str, formats: Sequence[str]) -> str:
    expected = ", ".join(repr(date_format) for date_format in formats)
    return (
        f"invalid {label} {text!r}: expected one of the formats {expected} "
        "(set 'date_format' in the adapter settings for another)"
    )
