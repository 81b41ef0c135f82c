"""The coordinator's counts of capacity requests per month and state, as a table and a CSV file.

A month is the calendar month in Europe/Warsaw in which a request was created, and a request is
counted under its current state, so open requests are under ``sent`` or ``delivered``. Only a
coordinator account reads the counts, so the coordinator page of a server without accounts
(open mode) shows a note instead. The CSV uses the dialect of ``server.csv_export``: ``;`` in
Polish and ``,`` in English, UTF-8 with a byte order mark, and the month as ``2026-12``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from kooperant.i18n import Language
from server.api_errors import read
from server.auth import Authenticator
from server.messages import MESSAGES
from server.pages import page_viewer, request_language
from server.request_format import state_text
from server.storage import RequestMonthCount, RequestState, Storage, Viewer

logger = logging.getLogger(__name__)

REQUEST_COUNTS_CSV_PATH = "/coordinator/requests.csv"
_STATES = tuple(RequestState)


@dataclass(frozen=True, slots=True)
class MonthRow:
    month: date
    """The first day of the month."""
    counts: tuple[int, ...]
    """One count per state of ``RequestState``, in its order."""

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class RequestCountsTable:
    """The counts of the coordinator page: a row per month, newest first, a column per state."""

    states: tuple[str, ...]
    rows: tuple[MonthRow, ...]
    totals: tuple[int, ...]
    csv_href: str

    def month_text(self, row: MonthRow, language: Language) -> str:
        return row.month.strftime("%m.%Y" if language == "pl" else "%Y-%m")


def month_rows(counts: Sequence[RequestMonthCount]) -> tuple[MonthRow, ...]:
    """Return one row per month that has requests, newest month first."""
    by_month: dict[date, list[int]] = {}
    for item in counts:
        row = by_month.setdefault(item.month, [0] * len(_STATES))
        row[_STATES.index(item.state)] += item.count
    return tuple(
        MonthRow(month, tuple(by_month[month])) for month in sorted(by_month, reverse=True)
    )


async def request_counts_table(
    storage: Storage, viewer: Viewer, language: Language
) -> RequestCountsTable | None:
    """Return the table of the coordinator page, or ``None`` for a viewer that is no coordinator."""
    if not viewer.coordinator:
        return None
    counts = await read(storage.request_counts_per_month, viewer=viewer)
    rows = month_rows(counts)
    totals = tuple(sum(row.counts[index] for row in rows) for index in range(len(_STATES)))
    return RequestCountsTable(
        states=tuple(state_text(state, language) for state in _STATES),
        rows=rows,
        totals=totals,
        csv_href=f"{REQUEST_COUNTS_CSV_PATH}?lang={language}",
    )


def request_counts_csv(rows: Sequence[MonthRow], language: Language) -> str:
    """Return the CSV text, BOM included, of ``rows`` with a header row."""
    output = io.StringIO()
    output.write("\ufeff")
    writer = csv.writer(output, delimiter=";" if language == "pl" else ",", lineterminator="\r\n")
    header = [MESSAGES("csv_month", language)]
    header += [state_text(state, language) for state in _STATES]
    header.append(MESSAGES("csv_total", language))
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.month.strftime("%Y-%m"), *row.counts, row.total])
    return output.getvalue()


def add_request_counts_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    """Register the CSV of the request counts, for a coordinator account only, on ``app``."""

    @app.get(REQUEST_COUNTS_CSV_PATH, include_in_schema=False)
    async def request_counts_export(request: Request) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        if not viewer.coordinator:
            logger.info("Rejected the request counts CSV: the viewer is not a coordinator account")
            return PlainTextResponse(
                "only a signed-in coordinator account can download the request counts",
                status_code=403,
            )
        language = request_language(request)
        counts = await read(storage.request_counts_per_month, viewer=viewer)
        filename = f"kooperant-requests-{viewer.cluster}-{clock():%Y-%m-%d}.csv"
        return Response(
            request_counts_csv(month_rows(counts), language),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
