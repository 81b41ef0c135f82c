"""The request pages: ``/requests`` (sent and received), ``/requests/{id}`` and its withdrawal.

``/requests`` lists the requests the viewer's member sent and those it received, newest first,
each list paged on its own (``sent_page``, ``received_page``). A request the viewer may not read
gets the same 404 page as one that does not exist. The withdrawal is a POST checked by
``server.page_posts``, and only the requester's session may send it while the request is open.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kooperant.i18n import Language
from kooperant.protocol.topics import REQUEST_ID_PATTERN
from server.api_errors import read
from server.auth import Authenticator, viewer_of_user
from server.errors import (
    RequestConflictError,
    RequestError,
    RequestForbiddenError,
    RequestNotFoundError,
)
from server.messages import MESSAGES
from server.page_posts import checked_form, post_session
from server.pages import message_page, page_viewer, render_page, request_language
from server.request_format import RequestRow, log_rows, refusal_text, request_row
from server.search_routes import not_found_page
from server.storage import Storage, Viewer

logger = logging.getLogger(__name__)

REQUESTS_PAGE_SIZE = 20
MAX_REQUESTS_PAGE = 10_000
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_STATUS_OF_ERROR: dict[type[RequestError], int] = {
    RequestNotFoundError: 404,
    RequestForbiddenError: 403,
    RequestConflictError: 409,
}


@dataclass(frozen=True, slots=True)
class RequestSection:
    """One list of ``/requests``: the sent or the received requests, one page of them."""

    role: str
    rows: tuple[RequestRow, ...]
    total: int
    page: int
    pages: int
    previous_href: str | None
    next_href: str | None


def add_request_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    """Register ``/requests``, ``/requests/{id}`` and its withdrawal on ``app``."""

    @app.get("/requests", response_class=HTMLResponse, include_in_schema=False)
    async def requests_page(request: Request) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        pages: dict[str, int] = {}
        for role in ("sent", "received"):
            text = request.query_params.get(f"{role}_page", "1")
            number = _page_number(text)
            if number is None:
                heading = MESSAGES("page_invalid_title", language)
                message = MESSAGES(
                    "search_page_invalid", language, value=text[:32], max=MAX_REQUESTS_PAGE
                )
                return message_page(request, authenticator, 400, heading, message)
            pages[role] = number

        sections = []
        for role, number in pages.items():
            sections.append(await _section(storage, viewer, role, number, pages, language))
        return render_page(
            request,
            authenticator,
            "requests.html",
            "/requests",
            has_member=viewer.member is not None,
            sections=sections,
        )

    @app.get("/requests/{request_id}", response_class=HTMLResponse, include_in_schema=False)
    async def request_page(request: Request, request_id: str) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        record = None
        if _REQUEST_ID.match(request_id):
            record = await read(storage.get_request, request_id, viewer=viewer)
        if record is None:
            return not_found_page(request, authenticator)

        account = await asyncio.to_thread(authenticator.session, request)
        row = request_row(record, language)
        may_withdraw = (
            account is not None
            and row.is_open
            and viewer.owns(record.request.cluster, record.request.requester)
        )
        return render_page(
            request,
            authenticator,
            "request.html",
            "/requests",
            row=row,
            request_record=record.request,
            reason=record.reason,
            log=log_rows(record, language),
            may_withdraw=may_withdraw,
        )

    @app.post("/requests/{request_id}/withdraw", include_in_schema=False)
    async def withdraw_request(request: Request, request_id: str) -> Response:
        language = request_language(request)
        page = f"/requests/{request_id}?lang={language}"
        session = await post_session(request, authenticator, page)
        if isinstance(session, Response):
            return session
        form = await checked_form(request, authenticator, session)
        if isinstance(form, Response):
            return form
        if not _REQUEST_ID.match(request_id):
            return not_found_page(request, authenticator)

        viewer = viewer_of_user(session.user)
        try:
            await read(storage.withdraw_request, request_id, viewer=viewer, now=clock())
        except RequestError as refused:
            logger.info(
                "Rejected the withdrawal of request %s by user %s: %s",
                request_id,
                session.user.username,
                refused,
            )
            if isinstance(refused, RequestNotFoundError):
                return not_found_page(request, authenticator)
            heading = MESSAGES("request_withdraw_failed_title", language)
            status = _STATUS_OF_ERROR.get(type(refused), 422)
            text = refusal_text(refused, language)
            return message_page(request, authenticator, status, heading, text)

        request.app.state.requests_changed.set()
        logger.info("User %s withdrew request %s", session.user.username, request_id)
        return RedirectResponse(page, status_code=303)


async def _section(
    storage: Storage,
    viewer: Viewer,
    role: str,
    number: int,
    pages: dict[str, int],
    language: Language,
) -> RequestSection:
    """Return one list of ``/requests``: its rows, total and the links to its other pages."""
    found = await read(
        storage.list_requests,
        viewer=viewer,
        role=role,
        limit=REQUESTS_PAGE_SIZE,
        offset=(number - 1) * REQUESTS_PAGE_SIZE,
    )
    last = max(1, -(-found.total // REQUESTS_PAGE_SIZE))

    def link(target: int) -> str:
        numbers = {**pages, role: target}
        return f"?sent_page={numbers['sent']}&received_page={numbers['received']}&lang={language}"

    return RequestSection(
        role=role,
        rows=tuple(request_row(item, language) for item in found.items),
        total=found.total,
        page=number,
        pages=last,
        previous_href=link(number - 1) if number > 1 else None,
        next_href=link(number + 1) if number < last else None,
    )


def _page_number(value: str) -> int | None:
    """Return the page of ``value``, or ``None`` if it is not from 1 to the maximum."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 1 <= number <= MAX_REQUESTS_PAGE else None
