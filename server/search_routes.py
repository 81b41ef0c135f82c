"""The search page, its CSV export, the offer page and the offer's calendar feed.

Every page reads as the caller's viewer (``Authenticator.dashboard_viewer``), so audience and
expiry apply to pages, exports and feeds alike. A page without a viewer redirects to sign-in.
An offer the viewer may not see gets the same 404 page as an offer that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from kooperant.i18n import Language
from kooperant.intervals import Interval
from server.api_errors import read
from server.auth import Authenticator
from server.csv_export import EXPORT_MAX_ROWS, history_csv, search_csv
from server.dashboard import format_amounts, format_time
from server.feed_links import (
    FEED_KEY_NAME,
    link_identity,
    signed_feed_path,
    viewer_of_signed_link,
)
from server.ics import calendar
from server.messages import MESSAGES
from server.page_format import (
    StatusBadge,
    free_text,
    next_free_text,
    price_text,
    state_text,
    status_badge,
)
from server.pages import message_page, page_viewer, render_page, request_language, valid_ids
from server.regions import VOIVODESHIPS
from server.request_form import offer_request_context
from server.search_params import KINDS, PAGE_SIZE, parse_search
from server.storage import (
    HistoryRecord,
    MemberRecord,
    ResourceQuery,
    ResourceRecord,
    Storage,
    Viewer,
)
from server.storage.records import SORT_KEYS
from server.timeline import DEFAULT_HORIZON, Timeline, build_timeline

logger = logging.getLogger(__name__)

FEED_REJECTED_MESSAGE = "invalid or missing feed signature"
HISTORY_PAGE_SIZE = 20
MAX_HISTORY_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class ResultRow:
    record: ResourceRecord
    href: str
    member_href: str
    kind: str
    state: str
    free: str
    next_free: str
    badge: StatusBadge
    timeline: Timeline


def offer_href(record: ResourceRecord) -> str:
    return f"/offers/{record.cluster}/{record.member}/{record.resource}"


def add_search_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def search_page(request: Request) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        parsed = parse_search(request.query_params, language)
        now = clock()
        capabilities = await read(storage.known_capabilities, viewer=viewer, now=now)
        context: dict[str, Any] = {
            "form": parsed.form,
            "errors": parsed.errors,
            "kinds": [(kind, MESSAGES(f"kind_{kind}", language)) for kind in KINDS],
            "regions": [(item.code, item.name(language)) for item in VOIVODESHIPS],
            "capabilities": capabilities,
            "sort_keys": SORT_KEYS,
            "export_limit": EXPORT_MAX_ROWS,
        }
        if parsed.query is None:
            return render_page(
                request, authenticator, "search.html", "/", status_code=400, **context
            )

        page = await read(storage.list_resources, parsed.query, viewer=viewer, now=now)
        members = await read(storage.list_members, viewer=viewer, now=now)
        by_key = {(member.cluster, member.member): member for member in members}
        span = Interval(now, now + DEFAULT_HORIZON)
        rows = [_result_row(record, by_key, span, now, language) for record in page.items]
        pages = max(1, -(-page.total // PAGE_SIZE))
        return render_page(
            request,
            authenticator,
            "search.html",
            "/",
            rows=rows,
            total=page.total,
            pages=pages,
            **context,
        )

    @app.get("/export/search.csv", include_in_schema=False)
    async def search_export(request: Request) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        parsed = parse_search(request.query_params, language, limit=EXPORT_MAX_ROWS)
        if parsed.query is None:
            return PlainTextResponse("\n".join(parsed.errors), status_code=400)
        everything = replace(parsed.query, offset=0)
        return await csv_response(storage, everything, viewer, clock(), language)

    @app.get("/offers/{cluster}/{member}/{resource}/history.csv", include_in_schema=False)
    async def offer_history_export(
        request: Request, cluster: str, member: str, resource: str
    ) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        history = None
        if valid_ids(cluster, member, resource):
            history = await read(
                storage.list_history,
                cluster,
                member,
                resource,
                viewer=viewer,
                now=clock(),
                limit=EXPORT_MAX_ROWS,
            )
        if history is None:
            return not_found_page(request, authenticator)
        return Response(
            history_csv(history.items, request_language(request)),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{resource}-history.csv"',
                "X-Total-Count": str(history.total),
                "X-Export-Row-Limit": str(EXPORT_MAX_ROWS),
            },
        )

    @app.get("/offers/{cluster}/{member}/{resource}.ics", include_in_schema=False)
    async def offer_feed(
        request: Request,
        cluster: str,
        member: str,
        resource: str,
        sig: str | None = None,
        viewer: str | None = None,
    ) -> Response:
        caller: Viewer | None
        repeated = [
            name for name in ("sig", "viewer") if len(request.query_params.getlist(name)) > 1
        ]
        if repeated:
            logger.info(
                "Rejected a calendar feed request for %s/%s/%s with repeated %s",
                cluster,
                member,
                resource,
                ", ".join(repeated),
            )
            return PlainTextResponse(
                f"query parameter {repeated[0]!r} is repeated; give it once", status_code=400
            )
        if sig is not None:
            key = await read(storage.secret, FEED_KEY_NAME)
            caller = viewer_of_signed_link(key, viewer, sig, cluster, member, resource)
            if caller is not None and caller.anonymous and authenticator.required:
                caller = None
            if caller is not None and not await _link_viewer_allowed(
                storage, authenticator, caller
            ):
                logger.info(
                    "Rejected a calendar feed request for %s/%s/%s: viewer %s of the link has "
                    "no enabled dashboard account and no API token",
                    cluster,
                    member,
                    resource,
                    link_identity(caller),
                )
                # The response equals that of a wrong signature, so it does not reveal whether
                # an account exists.
                return PlainTextResponse(FEED_REJECTED_MESSAGE, status_code=403)
        else:
            caller = authenticator.dashboard_viewer(request)
        if caller is None:
            logger.info("Rejected a calendar feed request for %s/%s/%s", cluster, member, resource)
            return PlainTextResponse(FEED_REJECTED_MESSAGE, status_code=403)
        language: Language = "en" if request.query_params.get("lang") == "en" else "pl"
        return await feed_response(
            storage, cluster, member, resource, caller, clock(), language=language
        )

    @app.get(
        "/offers/{cluster}/{member}/{resource}",
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    async def offer_page(request: Request, cluster: str, member: str, resource: str) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        now = clock()
        record = await read(storage.get_resource, cluster, member, resource, viewer=viewer, now=now)
        if record is None:
            return not_found_page(request, authenticator)

        history_text = request.query_params.get("history_page", "1")
        history_page = _history_page_number(history_text)
        if history_page is None:
            text = MESSAGES(
                "search_page_invalid", language, value=history_text, max=MAX_HISTORY_PAGE
            )
            heading = MESSAGES("page_invalid_title", language)
            return message_page(request, authenticator, 400, heading, text)
        history = await read(
            storage.list_history,
            cluster,
            member,
            resource,
            viewer=viewer,
            now=now,
            limit=HISTORY_PAGE_SIZE,
            offset=(history_page - 1) * HISTORY_PAGE_SIZE,
        )
        if history is None:
            return not_found_page(request, authenticator)

        key = await read(storage.secret, FEED_KEY_NAME)
        span = (
            record.horizon if record.horizon is not None else Interval(now, now + DEFAULT_HORIZON)
        )
        if span.end <= span.start:
            span = Interval(now, now + DEFAULT_HORIZON)
        members = await read(storage.list_members, viewer=viewer, now=now)
        owner = next(
            (item for item in members if (item.cluster, item.member) == (cluster, member)), None
        )
        request_context = await offer_request_context(
            request, storage, authenticator, record, now, language
        )
        return render_page(
            request,
            authenticator,
            "offer.html",
            "/",
            record=record,
            kind=MESSAGES(f"kind_{record.kind}", language),
            state=state_text(record.state, language),
            state_since=format_time(record.state_since, language),
            free=free_text(record, language),
            amounts=format_amounts(record.amounts, language),
            price=price_text(record.price, language),
            next_free=next_free_text(record, now, language),
            updated=format_time(record.received_at, language),
            badge=status_badge(owner, language),
            timeline=build_timeline(record.free_intervals, span, now, language, hour_ticks=True),
            history=[_history_row(item, language) for item in history.items],
            history_total=history.total,
            history_page=history_page,
            history_pages=max(1, -(-history.total // HISTORY_PAGE_SIZE)),
            feed_url=f"{signed_feed_path(key, viewer, cluster, member, resource)}&lang={language}",
            history_csv_url=f"/offers/{cluster}/{member}/{resource}/history.csv",
            export_limit=EXPORT_MAX_ROWS,
            member_href=f"/members/{cluster}/{member}",
            **request_context,
        )


async def csv_response(
    storage: Storage, query: ResourceQuery, viewer: Viewer, now: datetime, language: Language
) -> Response:
    """Return the CSV of ``query``, all rows up to ``EXPORT_MAX_ROWS``, as a download."""
    page = await read(storage.list_resources, query, viewer=viewer, now=now)
    headers = {
        "Content-Disposition": 'attachment; filename="kooperant-search.csv"',
        "X-Total-Count": str(page.total),
        "X-Export-Row-Limit": str(EXPORT_MAX_ROWS),
    }
    return Response(
        search_csv(page.items, language, now),
        media_type="text/csv; charset=utf-8",
        headers=headers,
    )


async def _link_viewer_allowed(
    storage: Storage, authenticator: Authenticator, viewer: Viewer
) -> bool:
    """Return whether the viewer a feed link was signed for may still sign in somehow.

    That is an enabled dashboard account, or for a member an API token in the tokens file,
    because the offer page that gives out links accepts both. An anonymous link needs neither,
    and on a server without accounts and tokens file (open) every link with a valid signature
    is served.
    """
    if viewer.cluster is None or not authenticator.required:
        return True
    if authenticator.has_token(viewer):
        return True
    return bool(await read(storage.identity_has_enabled_account, viewer.cluster, viewer.member))


async def feed_response(
    storage: Storage,
    cluster: str,
    member: str,
    resource: str,
    viewer: Viewer,
    now: datetime,
    *,
    language: Language = "pl",
) -> Response:
    """Return the iCalendar feed of one offer in the view of ``viewer``, or 404 if hidden.

    Event summaries are in ``language``, which the page's feed link passes as ``lang``.
    """
    if not valid_ids(cluster, member, resource):
        return PlainTextResponse("offer not found", status_code=404)
    record = await read(storage.get_resource, cluster, member, resource, viewer=viewer, now=now)
    if record is None:
        return PlainTextResponse("offer not found", status_code=404)
    name = record.name or record.resource
    summary = MESSAGES("feed_summary", language, name=name, member=record.member)
    description = f"{record.cluster}/{record.member}/{record.resource}"
    body = calendar(
        (cluster, member, resource),
        summary,
        description,
        [interval for interval in record.free_intervals if interval.end > now],
        now,
        f"kooperant {name}",
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{resource}.ics"'},
    )


def not_found_page(request: Request, authenticator: Authenticator) -> HTMLResponse:
    language = request_language(request)
    heading = MESSAGES("not_found_title", language)
    return message_page(request, authenticator, 404, heading, MESSAGES("not_found_text", language))


def _history_page_number(value: str) -> int | None:
    """Return the history page of ``value``, or ``None`` if it is not from 1 to the maximum."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 1 <= number <= MAX_HISTORY_PAGE else None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    generated: str
    received: str
    state: str
    free: str


def _history_row(item: HistoryRecord, language: Language) -> HistoryRow:
    return HistoryRow(
        generated=format_time(item.generated_at, language),
        received=format_time(item.received_at, language),
        state=state_text(item.state, language),
        free=free_text(item, language),
    )


def _result_row(
    record: ResourceRecord,
    members: dict[tuple[str, str], MemberRecord],
    span: Interval,
    now: datetime,
    language: Language,
) -> ResultRow:
    return ResultRow(
        record=record,
        href=offer_href(record),
        member_href=f"/members/{record.cluster}/{record.member}",
        kind=MESSAGES(f"kind_{record.kind}", language),
        state=state_text(record.state, language),
        free=free_text(record, language),
        next_free=next_free_text(record, now, language),
        badge=status_badge(members.get((record.cluster, record.member)), language),
        timeline=build_timeline(record.free_intervals, span, now, language),
    )
