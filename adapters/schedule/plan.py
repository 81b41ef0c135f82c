"""The production plan parser: rows of work orders from a CSV or XLSX export.

Each row is one work order: order number, ERP machine code, start and end (or a duration in hours).
Times are local wall times in the agent's timezone, and ``parse_local_datetime`` documents how
daylight saving time gaps and repeats are resolved. XLSX date cells are taken as such, text dates
are read with ``date_format`` and then ``FALLBACK_DATE_FORMATS``. One invalid row fails the whole
file, so a half-read plan is never used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters.base import ScheduledWork, WorkOrder
from adapters.errors import ExportFormatError
from adapters.exports.columns import ColumnLayout, cell_text
from adapters.exports.identifiers import slugify_code
from adapters.exports.polish_csv import decode_export, detect_delimiter, read_rows
from adapters.exports.tables import TableRow, read_table
from adapters.schedule.settings import ScheduleSettings
from kooperant.intervals import Interval

# Tried after the configured ``date_format``: a date alone means 00:00.
FALLBACK_DATE_FORMATS = (
    "%d.%m.%Y",
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def read_schedule(
    path: Path, settings: ScheduleSettings, timezone: ZoneInfo
) -> list[ScheduledWork]:
    """Read the CSV or XLSX export at ``path`` row by row into one ``ScheduledWork`` per machine.

    Raises ``ExportFormatError`` for an invalid export and ``OSError`` when the file cannot be
    read. ``settings.path`` is ignored, so a caller can point the same settings at another file.
    """
    return schedule_from_rows(read_table(path, settings), path, settings, timezone)


def parse_schedule(
    data: bytes, path: Path, settings: ScheduleSettings, timezone: ZoneInfo
) -> list[ScheduledWork]:
    """Parse the bytes of a CSV export already in memory; ``path`` names it in errors."""
    text = decode_export(data, path, settings.encoding)
    delimiter = settings.delimiter
    if delimiter == "auto":
        delimiter = detect_delimiter(text, path)
    rows = (TableRow(row.line, row.cells) for row in read_rows(text, path, delimiter))
    return schedule_from_rows(rows, path, settings, timezone)


def schedule_from_rows(
    rows: Iterable[TableRow], path: Path, settings: ScheduleSettings, timezone: ZoneInfo
) -> list[ScheduledWork]:
    """Turn a header row and order rows into one ``ScheduledWork`` per machine, sorted by id."""
    iterator: Iterator[TableRow] = iter(rows)
    header = next(iterator, None)
    if header is None:
        raise ExportFormatError(path, "the file is empty; expected a header row and orders")
    layout = PlanLayout(header, path, settings, timezone)

    orders: dict[str, list[WorkOrder]] = defaultdict(list)
    for row in iterator:
        resource, order = layout.parse_row(row)
        orders[resource].append(order)

    return [
        ScheduledWork(resource, tuple(sorted(orders[resource], key=lambda item: item.interval)))
        for resource in sorted(orders)
    ]


class PlanLayout:
    """The columns found in one plan's header, and the parser of that plan's rows."""

    def __init__(
        self, header: TableRow, path: Path, settings: ScheduleSettings, timezone: ZoneInfo
    ) -> None:
        columns = settings.columns
        self.columns = ColumnLayout(header, path, columns, optional=("end", "hours"))
        if not self.columns.has("end") and not self.columns.has("hours"):
            found = ", ".join(repr(cell_text(cell)) for cell in header.cells)
            raise ExportFormatError(
                path,
                f"missing column {columns.end!r} (or a duration column {columns.hours!r}); the "
                f"header has {found}. Rename the column in the export or set 'columns.end' or "
                "'columns.hours' in the adapter settings",
                line=header.line,
                column=columns.end,
            )
        self.machines: Mapping[str, str] = settings.machines
        self.formats = (settings.date_format, *FALLBACK_DATE_FORMATS)
        self.timezone = timezone

    def parse_row(self, row: TableRow) -> tuple[str, WorkOrder]:
        """Return the resource id and the order of one data row."""
        columns = self.columns
        order_id = columns.text(row, "order", "order number")
        code = columns.text(row, "machine", "machine code")
        resource = self.machines.get(code) or slugify_code(code)
        if not resource:
            raise columns.error(
                row,
                "machine",
                f"machine code {code!r} cannot be turned into a resource id; "
                "map it in 'machines' in the adapter settings",
            )

        start = columns.local_datetime(row, "start", "start", self.formats, self.timezone)
        end = self._end(row, start)
        if end < start:
            raise columns.error(
                row,
                "end",
                f"end {cell_text(columns.cell(row, 'end'))!r} is before start "
                f"{cell_text(columns.cell(row, 'start'))!r}; fix the dates of order {order_id!r}",
            )
        return resource, WorkOrder(order_id, Interval(start, end))

    def _end(self, row: TableRow, start: datetime) -> datetime:
        columns = self.columns
        end_given = columns.has("end") and cell_text(columns.cell(row, "end"))
        if end_given or not columns.has("hours"):
            return columns.local_datetime(row, "end", "end", self.formats, self.timezone)

        text = columns.text(row, "hours", "duration in hours")
        hours = columns.number(row, "hours", "duration in hours")
        if hours < 0:
            raise columns.error(
                row, "hours", f"invalid duration {text!r}: expected hours such as 8 or 1,5"
            )
        try:
            return start + timedelta(hours=hours)
        except OverflowError as error:
            raise columns.error(
                row, "hours", f"duration {text!r} ends beyond the year 9999; expected hours"
            ) from error
