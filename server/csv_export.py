"""CSV of a search result and of an offer's history, in the dialect of the page's language.

Polish files use ``;`` between fields and a decimal comma, as Polish spreadsheet programs
expect; English files use ``,`` and a point. Files are UTF-8 with a byte order mark, so Excel
reads the diacritics. A cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return
gets a leading ``'``, so a spreadsheet shows it as text instead of running it as a formula.
Capabilities, suppliers and customers in one cell are separated by ``, ``, as in the search
form's capability field. Kinds and machine states are worded as the pages show them, in the
file's language. Ids, capability tags, suppliers and customers stay as the offer has them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kooperant.i18n import Language
from server.api_json import time_json
from server.dashboard import format_amounts
from server.messages import MESSAGES
from server.page_format import state_text
from server.storage import HistoryRecord, ResourceRecord

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
    "csv_price",
    "csv_price_currency",
    "csv_price_unit",
    "csv_suppliers",
    "csv_customers",
)
_HISTORY_COLUMNS = (
    "csv_generated",
    "csv_received",
    "csv_state",
    "csv_free_hours",
    "csv_free_hours_band",
    "csv_amounts",
)


def guard_cell(value: str) -> str:
    """Return ``value`` with a leading ``'`` if a spreadsheet would read it as a formula."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def _writer(output: io.StringIO, language: Language) -> Any:
    output.write("\ufeff")
    return csv.writer(output, delimiter=";" if language == "pl" else ",", lineterminator="\r\n")


def history_csv(items: Sequence[HistoryRecord], language: Language) -> str:
    """Return the CSV text, BOM included, of an offer's history with a header row."""
    output = io.StringIO()
    writer = _writer(output, language)
    writer.writerow([MESSAGES(column, language) for column in _HISTORY_COLUMNS])
    for item in items:
        band = item.free_hours_band
        row = [
            time_json(item.generated_at) or "",
            time_json(item.received_at) or "",
            _state(item.state, language),
            _number(item.free_hours, language),
            _band(band.min, band.max, language) if band is not None else "",
            format_amounts(item.amounts, language) if item.amounts else "",
        ]
        writer.writerow([guard_cell(str(cell)) for cell in row])
    return output.getvalue()


def _state(state: str | None, language: Language) -> str:
    # An offer without a state gets an empty cell, not the pages' dash.
    return state_text(state, language) if state is not None else ""


def _band(minimum: float, maximum: float | None, language: Language) -> str:
    return f"{_number(minimum, language)}–{_number(maximum, language)}"


def _number(value: float | None, language: Language) -> str:
    if value is None:
        return ""
    # Up to six decimals and never an exponent (``:g`` gave 1.23457e+06); finer digits are rounded.
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.replace(".", ",") if language == "pl" else text


def search_csv(records: Sequence[ResourceRecord], language: Language, now: datetime) -> str:
    """Return the CSV text, BOM included, of ``records`` with a header row."""
    output = io.StringIO()
    writer = _writer(output, language)
    writer.writerow([MESSAGES(column, language) for column in _COLUMNS])
    for record in records:
        upcoming = [interval for interval in record.free_intervals if interval.end > now]
        band = record.free_hours_band
        price = record.price
        band_text = _band(band.min, band.max, language) if band is not None else ""
        row = [
            record.cluster,
            record.member,
            record.resource,
            record.name or "",
            MESSAGES(f"kind_{record.kind}", language),
            ", ".join(record.capabilities),
            _state(record.state, language),
            _number(record.free_hours, language),
            band_text,
            format_amounts(record.amounts, language) if record.amounts else "",
            time_json(max(upcoming[0].start, now)) if upcoming else "",
            time_json(upcoming[0].end) if upcoming else "",
            time_json(record.received_at) or "",
            _number(price.value, language) if price is not None else "",
            price.currency if price is not None else "",
            price.unit if price is not None else "",
            ", ".join(record.suppliers),
            ", ".join(record.customers),
        ]
        writer.writerow([guard_cell(str(cell)) for cell in row])
    return output.getvalue()
