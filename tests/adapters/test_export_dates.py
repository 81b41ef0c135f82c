"""Tests of the date cells of tabular exports: the quick formats agree with strptime."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.errors import ExportFormatError
from adapters.exports.columns import ColumnLayout
from adapters.exports.tables import TableRow

TEXTS = [
    "07.12.2026",
    "7.1.2026",
    "31.11.2026",
    "29.02.2028",
    "29.02.2027",
    "0.12.2026",
    "07.12.26",
    "07.12.20266",
    "+7.12.2026",
    "07.12.2026 08:00",
    "2026-12-07",
    "2026-1-7",
    "2026-13-01",
    "١٢.١٢.٢٠٢٦",
]


class DateColumns(BaseModel):
    start: str = "Od"


def strptime_date(text: str, date_format: str) -> date | None:
    try:
        return datetime.strptime(text, date_format).date()
    except ValueError:
        return None


def layout_date(text: str, date_format: str) -> date | None:
    layout = ColumnLayout(TableRow(1, ("Od",)), Path("kalendarz.csv"), DateColumns())
    try:
        return layout.date(TableRow(2, (text,)), "start", "first day", (date_format,))
    except ExportFormatError:
        return None


@pytest.mark.parametrize("date_format", ["%d.%m.%Y", "%Y-%m-%d"])
@pytest.mark.parametrize("text", TEXTS)
def test_quick_date_matches_strptime(text: str, date_format: str) -> None:
    assert layout_date(text, date_format) == strptime_date(text, date_format)


def test_other_format_uses_strptime() -> None:
    assert layout_date("07/12/2026", "%d/%m/%Y") == date(2026, 12, 7)
    assert layout_date("31/11/2026", "%d/%m/%Y") is None
