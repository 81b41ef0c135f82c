"""The production plan: settings and parser of a CSV export of work orders.

Each row is one work order: order number, ERP machine code, start and end (or a duration in hours).
Times are local wall times in the agent's timezone, and ``parse_local_datetime`` documents how
daylight saving time gaps and repeats are resolved. One invalid row fails the whole file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from adapters.base import AdapterSettings, ScheduledWork, WorkOrder
from adapters.errors import ExportFormatError
from adapters.exports.identifiers import slugify_code
from adapters.exports.polish_csv import (
    DELIMITER_CANDIDATES,
    CsvRow,
    Encoding,
    decode_export,
    detect_delimiter,
    find_column,
    parse_decimal,
    parse_local_datetime,
    read_rows,
)
from kooperant.intervals import Interval
from kooperant.protocol import IDENTIFIER_PATTERN

# Tried after the configured ``date_format``: a date alone means 00:00.
FALLBACK_DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class ScheduleColumns(AdapterSettings):
    """Header text of each column in the export; matching ignores case and outer spaces."""

    order: str = "Zlecenie"
    machine: str = "Maszyna"
    start: str = "Początek"
    end: str = "Koniec"
    hours: str = Field(
        default="Godziny",
        description="Optional duration in hours, used when the end cell or column is absent.",
    )


class ScheduleCsvSettings(AdapterSettings):
    """Settings of the ``schedule_csv`` adapter."""

    path: Path = Field(description="The export file, relative to the agent config's folder.")
    encoding: Encoding = "auto"
    delimiter: str = Field(default=";", description="';', ',', a tab, or 'auto' to detect.")
    date_format: str = "%d.%m.%Y %H:%M"
    columns: ScheduleColumns = Field(default_factory=ScheduleColumns)
    machines: dict[str, str] = Field(
        default_factory=dict,
        description="ERP machine code to resource id; other codes are turned into ids.",
    )
    poll_interval_seconds: float = Field(default=5.0, gt=0)
    stable_seconds: float = Field(default=2.0, ge=0)

    @field_validator("delimiter")
    @classmethod
    def _check_delimiter(cls, value: str) -> str:
        if value != "auto" and value not in DELIMITER_CANDIDATES:
            raise ValueError(f"delimiter {value!r} is not ';', ',', a tab or 'auto'")
        return value

    @field_validator("date_format")
    @classmethod
    def _check_date_format(cls, value: str) -> str:
        sample = datetime(2026, 12, 31, 23, 59)
        try:
            parsed = datetime.strptime(sample.strftime(value), value)
        except ValueError as error:
            raise ValueError(
                f"date_format {value!r} cannot parse its own output: {error}"
            ) from None
        if parsed.date() != sample.date():
            raise ValueError(f"date_format {value!r} must contain day, month and year")
        return value

    @field_validator("machines")
    @classmethod
    def _check_machines(cls, value: dict[str, str]) -> dict[str, str]:
        for code, resource in value.items():
            if not _IDENTIFIER.fullmatch(resource):
                raise ValueError(
                    f"machine {code!r} maps to {resource!r}, which is not a valid resource id: "
                    "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
                )
        return {code.strip(): resource for code, resource in value.items()}


def read_schedule(
    path: Path, settings: ScheduleCsvSettings, timezone: ZoneInfo
) -> list[ScheduledWork]:
    """Read the export at ``path``; raise ``ExportFormatError`` or ``OSError`` if it cannot be read.

    ``settings.path`` is ignored, so a caller can point the same settings at another file.
    """
    return parse_schedule(path.read_bytes(), path, settings, timezone)


def parse_schedule(
    data: bytes, path: Path, settings: ScheduleCsvSettings, timezone: ZoneInfo
) -> list[ScheduledWork]:
    """Parse an export's bytes into one ``ScheduledWork`` per machine, sorted by resource id.

    One invalid row fails the whole file, so a half-read plan is never used.
    """
    text = decode_export(data, path, settings.encoding)
    delimiter = settings.delimiter
    if delimiter == "auto":
        delimiter = detect_delimiter(text, path)

    rows = read_rows(text, path, delimiter)
    header = next(rows, None)
    if header is None:
        raise ExportFormatError(path, "the file is empty; expected a header row and orders")
    layout = _ColumnLayout(header, path, settings.columns)

    orders: dict[str, list[WorkOrder]] = defaultdict(list)
    formats = (settings.date_format, *FALLBACK_DATE_FORMATS)
    for row in rows:
        resource, order = layout.parse_row(row, settings.machines, formats, timezone)
        orders[resource].append(order)

    return [
        ScheduledWork(resource, tuple(sorted(orders[resource], key=lambda item: item.interval)))
        for resource in sorted(orders)
    ]


class _ColumnLayout:
    """Column positions found in one file's header, and the parser of that file's rows."""

    def __init__(self, header: CsvRow, path: Path, columns: ScheduleColumns) -> None:
        self.path = path
        self.columns = columns
        self.header = header.cells
        self.order = self._require(header, "order")
        self.machine = self._require(header, "machine")
        self.start = self._require(header, "start")
        self.end = find_column(header.cells, columns.end)
        self.hours = find_column(header.cells, columns.hours)
        if self.end is None and self.hours is None:
            self._require(header, "end")

    def _require(self, header: CsvRow, name: str) -> int:
        expected: str = getattr(self.columns, name)
        index = find_column(header.cells, expected)
        if index is None:
            found = ", ".join(repr(cell.strip()) for cell in header.cells)
            raise ExportFormatError(
                self.path,
                f"missing column {expected!r}; the header has {found}. Rename the column in the "
                f"export or set 'columns.{name}' in the adapter settings",
                line=header.line,
                column=expected,
            )
        return index

    def parse_row(
        self,
        row: CsvRow,
        machines: Mapping[str, str],
        formats: Sequence[str],
        timezone: ZoneInfo,
    ) -> tuple[str, WorkOrder]:
        """Return the resource id and the order of one data row."""
        order_id = self._required_text(row, self.order, "order number")
        code = self._required_text(row, self.machine, "machine code")
        resource = machines.get(code) or slugify_machine_code(code)
        if not resource:
            raise self._error(
                row,
                self.machine,
                f"machine code {code!r} cannot be turned into a resource id; "
                "map it in 'machines' in the adapter settings",
            )

        start = self._datetime(row, self.start, "start", formats, timezone)
        end = self._end(row, start, formats, timezone)
        if end < start:
            assert self.end is not None  # an end computed from hours is never before the start
            raise self._error(
                row,
                self.end,
                f"end {self._cell(row, self.end)!r} is before start "
                f"{self._cell(row, self.start)!r}; fix the dates of order {order_id!r}",
            )
        return resource, WorkOrder(order_id, Interval(start, end))

    def _end(
        self, row: CsvRow, start: datetime, formats: Sequence[str], timezone: ZoneInfo
    ) -> datetime:
        if self.end is not None and (self.hours is None or self._cell(row, self.end)):
            return self._datetime(row, self.end, "end", formats, timezone)

        assert self.hours is not None
        text = self._required_text(row, self.hours, "duration in hours")
        hours = parse_decimal(text)
        if hours is None or hours < 0:
            raise self._error(
                row, self.hours, f"invalid duration {text!r}: expected hours such as 8 or 1,5"
            )
        return start + timedelta(hours=hours)

    def _datetime(
        self, row: CsvRow, index: int, label: str, formats: Sequence[str], timezone: ZoneInfo
    ) -> datetime:
        text = self._required_text(row, index, label)
        value = parse_local_datetime(text, formats, timezone)
        if value is None:
            expected = ", ".join(repr(date_format) for date_format in formats)
            raise self._error(
                row,
                index,
                f"invalid date {text!r}: expected one of the formats {expected} "
                "(set 'date_format' in the adapter settings for another)",
            )
        return value

    def _required_text(self, row: CsvRow, index: int, label: str) -> str:
        text = self._cell(row, index)
        if not text:
            raise self._error(row, index, f"empty {label}; every order needs one")
        return text

    def _cell(self, row: CsvRow, index: int) -> str:
        return row.cells[index].strip() if index < len(row.cells) else ""

    def _error(self, row: CsvRow, index: int, message: str) -> ExportFormatError:
        return ExportFormatError(
            self.path, message, line=row.line, column=self.header[index].strip()
        )


slugify_machine_code = slugify_code
