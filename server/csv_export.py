"""CSV of a search result, in the dialect of the page's language.

Polish files use ``;`` between fields and a decimal comma, as Polish spreadsheet programs
expect; English files use ``,`` and a point. Files are UTF-8 with a byte order mark, so Excel
reads the diacritics. A cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return
gets a leading ``'``, so a spreadsheet shows it as text instead of running it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime

from kooperant.i18n import Language
from server.api_json import time_json
from server.dashboard import format_amounts
from server.messages import MESSAGES
from server.storage import ResourceRecord

# The maximum rows of one export; the X-Total-Count header shows when a result had more.
EXPORT_MAX_ROWS = 10_000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_COLUMNS = (
    "csv_cluster",
    "csv_member",
    "csv_resource",
    "csv_name",
    "csv_kind",
    "csv_capabilities",
    "csv_state",
    "csv_free_hours",
    "csv_free_hours_band",
    "csv_amounts",
    "csv_next_free_start",
    "csv_next_free_end",
    "csv_updated",
)


def guard_cell(value: str) -> str:
    """Return ``value`` with a leading ``'`` if a spreadsheet would read it as a formula."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def _number(value: float | None, language: Language) -> str:
    if value is None:
        return ""
    text = f"{value:g}"
    return text.replace(".", ",") if language == "pl" else text


def search_csv(records: Sequence[ResourceRecord], language: Language, now: datetime) -> str:
    """Return the CSV text, BOM included, of ``records`` with a header row."""
    output = io.StringIO()
    output.write("\ufeff")
    writer = csv.writer(output, delimiter=";" if language == "pl" else ",", lineterminator="\r\n")
    writer.writerow([MESSAGES(column, language) for column in _COLUMNS])
    for record in records:
        upcoming = [interval for interval in record.free_intervals if interval.end > now]
        band = record.free_hours_band
        band_text = ""
        if band is not None:
            band_text = f"{_number(band.min, language)}–{_number(band.max, language)}"
        row = [
            record.cluster,
            record.member,
            record.resource,
            record.name or "",
            record.kind,
            " ".join(record.capabilities),
            record.state or "",
            _number(record.free_hours, language),
            band_text,
            format_amounts(record.amounts, language) if record.amounts else "",
            time_json(max(upcoming[0].start, now)) if upcoming else "",
            time_json(upcoming[0].end) if upcoming else "",
            time_json(record.received_at) or "",
        ]
        writer.writerow([guard_cell(str(cell)) for cell in row])
    return output.getvalue()
