"""The member list, a member's profile page and the coordinator view.

A member's capabilities are the union of the capabilities of its offers the viewer may see, so
an offer meant for others adds nothing to them. The coordinator view is open without accounts
(open mode) and otherwise only to a coordinator account; anyone else gets a 403 page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kooperant.i18n import Language
from server.api_errors import read
from server.api_json import REJECTED_EXCERPT_CHARS
from server.auth import Authenticator
from server.dashboard import format_hours, format_time
from server.messages import MESSAGES
from server.page_format import StatusBadge, format_date, free_text, status_badge
from server.pages import page_viewer, render_page, request_language, valid_ids
from server.regions import voivodeship_name
from server.request_counts import request_counts_table
from server.search_params import KINDS
from server.search_routes import not_found_page, offer_href
from server.storage import (
    CapacityPoint,
    MemberRecord,
    ProfileRecord,
    RejectedRecord,
    ResourceQuery,
    Storage,
    Viewer,
)

PROFILE_MAX_OFFERS = 1000
CAPACITY_DAYS = 30
REJECTED_SHOWN = 20
# Characters of each rejected payload the coordinator page shows; the API returns more.
REJECTED_PAGE_EXCERPT_CHARS = 200
# Days ahead of now whose free machine hours the coordinator view sums.
FREE_HOURS_DAYS = 7


@dataclass(frozen=True, slots=True)
class MemberRow:
    cluster: str
    member: str
    href: str
    name: str
    region: str
    city: str
    badge: StatusBadge
    offers: int


@dataclass(frozen=True, slots=True)
class CapacityBar:
    x: float
    y: float
    width: float
    height: float
    title: str
    label: str


def add_member_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    @app.get("/members", response_class=HTMLResponse, include_in_schema=False)
    async def members_page(request: Request) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        rows = await _member_rows(storage, viewer, clock(), language)
        return render_page(request, authenticator, "members.html", "/members", rows=rows)

    @app.get("/members/{cluster}/{member}", response_class=HTMLResponse, include_in_schema=False)
    async def member_page(request: Request, cluster: str, member: str) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        now = clock()
        if not valid_ids(cluster, member):
            return not_found_page(request, authenticator)
        profile = await read(storage.get_profile, cluster, member, viewer=viewer)
        members = await read(storage.list_members, viewer=viewer, now=now)
        known = next(
            (item for item in members if (item.cluster, item.member) == (cluster, member)), None
        )
        if profile is None and known is None:
            return not_found_page(request, authenticator)

        query = ResourceQuery(cluster=cluster, member=member, limit=PROFILE_MAX_OFFERS)
        page = await read(storage.list_resources, query, viewer=viewer, now=now)
        capabilities = sorted({item for record in page.items for item in record.capabilities})
        offers = [
            {
                "href": offer_href(record),
                "name": record.name or record.resource,
                "kind": MESSAGES(f"kind_{record.kind}", language),
                "free": free_text(record, language),
            }
            for record in page.items
        ]
        return render_page(
            request,
            authenticator,
            "member.html",
            "/members",
            cluster=cluster,
            member=member,
            profile=profile,
            region=voivodeship_name(profile.voivodeship, language) if profile else "",
            badge=status_badge(known, language),
            capabilities=capabilities,
            offers=offers,
        )

    @app.get("/coordinator", response_class=HTMLResponse, include_in_schema=False)
    async def coordinator_page(request: Request) -> Response:
        viewer = page_viewer(request, authenticator)
        if isinstance(viewer, RedirectResponse):
            return viewer
        language = request_language(request)
        if not coordinator_allowed(request, authenticator):
            return render_page(
                request,
                authenticator,
                "message.html",
                "/coordinator",
                status_code=403,
                heading=MESSAGES("forbidden_title", language),
                message=MESSAGES("forbidden_text", language),
            )
        context = await _coordinator_context(storage, viewer, clock(), language)
        return render_page(
            request,
            authenticator,
            "coordinator.html",
            "/coordinator",
            **context,
        )


async def _coordinator_context(
    storage: Storage, viewer: Viewer, now: datetime, language: Language
) -> dict[str, Any]:
    rows = await _member_rows(storage, viewer, now, language)

    per_kind = []
    for kind in KINDS:
        only_kind = ResourceQuery(kinds=(kind,), limit=1)
        counted = await read(storage.list_resources, only_kind, viewer=viewer, now=now)
        per_kind.append((MESSAGES(f"kind_{kind}", language), counted.total))

    free_week = await read(
        storage.free_hours_in_window,
        viewer=viewer,
        start=now,
        end=now + timedelta(days=FREE_HOURS_DAYS),
        now=now,
    )

    rejected = await read(storage.list_rejected, REJECTED_SHOWN, viewer=viewer)
    points = await read(storage.cluster_capacity, viewer=viewer, now=now, days=CAPACITY_DAYS)
    return {
        "rows": rows,
        "member_count": len(rows),
        "online_count": sum(1 for row in rows if row.badge.css_class == "online"),
        "per_kind": per_kind,
        "free_week": format_hours(free_week.hours, language),
        "rejected": [_rejected_row(item, language) for item in rejected],
        "rejected_excerpt_chars": REJECTED_PAGE_EXCERPT_CHARS,
        "rejected_api_chars": REJECTED_EXCERPT_CHARS,
        "capacity": capacity_bars(points, language),
        "capacity_days": CAPACITY_DAYS,
        "request_counts": await request_counts_table(storage, viewer, language),
    }


def _rejected_row(item: RejectedRecord, language: Language) -> dict[str, str]:
    """Return a rejected message for the page, its payload cut to a short excerpt.

    The size is that of the stored payload in UTF-8, which storage may have cut already.
    """
    excerpt = item.payload[:REJECTED_PAGE_EXCERPT_CHARS]
    if len(item.payload) > len(excerpt):
        excerpt += "…"
    size = len(item.payload.encode("utf-8"))
    return {
        "time": format_time(item.received_at, language),
        "topic": item.topic,
        "reason": item.reason,
        "payload": excerpt,
        "size": MESSAGES("payload_size", language, size=size),
    }


def coordinator_allowed(request: Request, authenticator: Authenticator) -> bool:
    """Return whether the caller may see the coordinator view (open mode or coordinator)."""
    if not authenticator.required:
        return True
    account = authenticator.page_account(request)
    return account is not None and account.role == "coordinator"


async def _member_rows(
    storage: Storage, viewer: Viewer, now: datetime, language: Language
) -> list[MemberRow]:
    members = await read(storage.list_members, viewer=viewer, now=now)
    profiles = await read(storage.list_profiles, viewer=viewer)
    by_key: dict[tuple[str, str], ProfileRecord] = {
        (item.cluster, item.member): item for item in profiles
    }
    seen: dict[tuple[str, str], MemberRecord | None] = {
        (item.cluster, item.member): item for item in members
    }
    for key in by_key:
        seen.setdefault(key, None)
    rows = []
    for key in sorted(seen):
        record = seen[key]
        profile = by_key.get(key)
        rows.append(
            MemberRow(
                cluster=key[0],
                member=key[1],
                href=f"/members/{key[0]}/{key[1]}",
                name=profile.name if profile else key[1],
                region=voivodeship_name(profile.voivodeship, language) if profile else "",
                city=(profile.city or "") if profile else "",
                badge=status_badge(record, language),
                offers=record.resources if record is not None else 0,
            )
        )
    return rows


def capacity_bars(points: list[CapacityPoint], language: Language) -> list[CapacityBar]:
    """Return one bar per day in a 1000×200 plot, scaled to the largest day."""
    if not points:
        return []
    largest = max(point.free_hours for point in points) or 1.0
    width = 1000 / len(points)
    bars = []
    for index, point in enumerate(points):
        height = 180 * point.free_hours / largest
        day = format_date(point.day, language)
        bars.append(
            CapacityBar(
                x=round(index * width, 2),
                y=round(190 - height, 2),
                width=round(max(width - 2, 1), 2),
                height=round(height, 2),
                title=MESSAGES(
                    "stats_capacity_bar",
                    language,
                    day=day,
                    hours=format_hours(point.free_hours, language),
                ),
                label=day,
            )
        )
    return bars
