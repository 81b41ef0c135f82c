"""API routes of the search: query parameters, one offer, its history, feed, profile, capacity.

Every route reads as the caller's viewer, so an offer the caller may not see returns the same
404 as a missing one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response

from kooperant.protocol import ResourceKind
from server.api_caller import Caller, parse_time_parameter
from server.api_errors import ApiError, read
from server.api_json import resource_json, time_json
from server.api_models import ErrorBody
from server.api_openapi import API_ERRORS
from server.csv_export import EXPORT_MAX_ROWS
from server.dashboard import choose_language
from server.regions import VOIVODESHIP_CODES
from server.search_routes import csv_response, feed_response
from server.storage import SORT_KEYS, ResourceQuery, Storage

MAX_LIMIT = 1000
# SQLite and PostgreSQL take OFFSET as a signed 64-bit integer and fail on larger values.
MAX_OFFSET = 2**63 - 1
MAX_CAPACITY_DAYS = 366

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such offer, or not one the caller may see"},
}
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The caller is not a coordinator"},
}

ClusterId = Annotated[str, Path(description="Cluster id", max_length=64)]
MemberId = Annotated[str, Path(description="Member id", max_length=64)]
ResourceId = Annotated[str, Path(description="Resource id", max_length=64)]


def resource_query(
    kind: Annotated[
        list[ResourceKind] | None, Query(description="Resource kind; repeatable (any of them)")
    ] = None,
    capability: Annotated[
        list[str] | None, Query(description="Capability tag; repeatable (all of them)")
    ] = None,
    member: Annotated[str | None, Query(description="Member id of the owner")] = None,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="Start of the time window, ISO 8601 with offset; keeps offers with a "
            "free interval in the window and cuts their free hours to it",
        ),
    ] = None,
    to: Annotated[
        str | None, Query(description="End of the time window, ISO 8601 with offset")
    ] = None,
    region: Annotated[
        list[str] | None,
        Query(description="Voivodeship code of the owner's profile, e.g. pomorskie; repeatable"),
    ] = None,
    city: Annotated[
        str | None,
        Query(description="City of the owner's profile, case-insensitive", max_length=200),
    ] = None,
    min_free: Annotated[
        float | None,
        Query(
            ge=0,
            description="Minimum free hours (or band minimum) or free amount (value or band "
            "minimum). With 'from' or 'to', a machine's free hours are those inside the "
            "window. With 'quantity', only amounts of that quantity count",
        ),
    ] = None,
    quantity: Annotated[
        str | None,
        Query(description="Amount quantity 'min_free' applies to, e.g. pallet_places"),
    ] = None,
    sort: Annotated[
        str,
        Query(description=f"Sort order, one of: {', '.join(SORT_KEYS)}"),
    ] = "member",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Offers to skip")] = 0,
) -> ResourceQuery:
    """Return the search of the API's query string, checked."""
    texts: dict[str, list[str | None]] = {
        "capability": list(capability or []),
        "member": [member],
        "city": [city],
        "quantity": [quantity],
    }
    for name, values in texts.items():
        for value in values:
            reject_nul(name, value)
    window_start = parse_time_parameter("from", from_)
    window_end = parse_time_parameter("to", to)
    if window_start is not None and window_end is not None and window_end <= window_start:
        raise ApiError(
            422,
            "invalid_window",
            f"query parameter 'to' ({to}) must be after 'from' ({from_})",
        )
    for code in region or ():
        if code not in VOIVODESHIP_CODES:
            raise ApiError(
                422,
                "invalid_parameter",
                f"query parameter 'region' value {code!r} is not a voivodeship code; use one "
                f"of: {', '.join(sorted(VOIVODESHIP_CODES))}",
            )
    if sort not in SORT_KEYS:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter 'sort' value {sort!r} is not one of: {', '.join(SORT_KEYS)}",
        )
    if min_free is not None and not math.isfinite(min_free):
        raise ApiError(
            422, "invalid_parameter", f"query parameter 'min_free' value {min_free} is not finite"
        )
    return ResourceQuery(
        kinds=tuple(str(item) for item in kind or ()),
        capabilities=tuple(capability or ()),
        member=member,
        window_start=window_start,
        window_end=window_end,
        regions=tuple(region or ()),
        city=city.strip() if city and city.strip() else None,
        min_free=min_free,
        quantity=quantity or None,
        sort=sort,
        limit=limit,
        offset=offset,
    )


def add_search_api_routes(app: FastAPI, storage: Storage, clock: Callable[[], datetime]) -> None:

    @app.get(
        "/api/v1/resources.csv",
        tags=["resources"],
        summary="Export a search as CSV",
        response_class=Response,
        responses={
            200: {"content": {"text/csv": {}}, "description": "The CSV file"},
            **API_ERRORS,
        },
    )
    async def export_resources(
        request: Request,
        viewer: Caller,
        query: Annotated[ResourceQuery, Depends(resource_query)],
        lang: Annotated[
            str | None,
            Query(description="pl (';' and decimal comma, the default) or en (',' and point)"),
        ] = None,
    ) -> Response:
        """Return all matching offers, up to 10,000 rows, as UTF-8 CSV with a BOM.

        ``X-Total-Count`` is the number of matches."""
        language = choose_language(lang, request.headers.get("accept-language"))
        everything = replace(query, limit=EXPORT_MAX_ROWS, offset=0)
        return await csv_response(storage, everything, viewer, clock(), language)

    @app.get(
        "/api/v1/resources/{cluster}/{member}/{resource}",
        tags=["resources"],
        summary="Read one offer",
        responses={**_NOT_FOUND, **API_ERRORS},
    )
    async def get_resource(
        viewer: Caller,
        cluster: ClusterId,
        member: MemberId,
        resource: ResourceId,
    ) -> dict[str, Any]:
        """Return the current offer of one resource, or 404 if it is absent or not for you."""
        _check_ids(cluster, member, resource)
        record = await read(
            storage.get_resource, cluster, member, resource, viewer=viewer, now=clock()
        )
        if record is None:
            raise _offer_not_found(cluster, member, resource)
        return resource_json(record, viewer)

    @app.get(
        "/api/v1/resources/{cluster}/{member}/{resource}/history",
        tags=["resources"],
        summary="List the received versions of one offer",
        responses={**_NOT_FOUND, **API_ERRORS},
    )
    async def get_history(
        viewer: Caller,
        cluster: ClusterId,
        member: MemberId,
        resource: ResourceId,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Versions to skip")] = 0,
    ) -> dict[str, Any]:
        """Return the versions newest first, or 404 while the current offer is hidden or absent."""
        _check_ids(cluster, member, resource)
        page = await read(
            storage.list_history,
            cluster,
            member,
            resource,
            viewer=viewer,
            now=clock(),
            limit=limit,
            offset=offset,
        )
        if page is None:
            raise _offer_not_found(cluster, member, resource)
        items = [
            {
                "generated_at": time_json(item.generated_at),
                "received_at": time_json(item.received_at),
                "state": item.state,
                "free_hours": item.free_hours,
                "free_hours_band": (
                    item.free_hours_band.to_json() if item.free_hours_band else None
                ),
                "amounts": list(item.amounts),
            }
            for item in page.items
        ]
        return {"items": items, "total": page.total, "limit": limit, "offset": offset}

    @app.get(
        "/api/v1/resources/{cluster}/{member}/{resource}/slots.ics",
        tags=["resources"],
        summary="Read the free intervals of one offer as iCalendar",
        response_class=Response,
        responses={
            200: {"content": {"text/calendar": {}}, "description": "The calendar"},
            **_NOT_FOUND,
            **API_ERRORS,
        },
    )
    async def get_slots(
        viewer: Caller,
        cluster: ClusterId,
        member: MemberId,
        resource: ResourceId,
    ) -> Response:
        """Return an RFC 5545 calendar with one event per upcoming free interval."""
        _check_ids(cluster, member, resource)
        response = await feed_response(storage, cluster, member, resource, viewer, clock())
        if response.status_code == 404:
            raise _offer_not_found(cluster, member, resource)
        return response

    @app.get(
        "/api/v1/members/{cluster}/{member}",
        tags=["members"],
        summary="Read a member's profile",
        responses={
            404: {"model": ErrorBody, "description": "No profile the caller may read"},
            **API_ERRORS,
        },
    )
    async def get_member_profile(
        viewer: Caller,
        cluster: ClusterId,
        member: MemberId,
    ) -> dict[str, Any]:
        """Return the profile the coordinator recorded, or 404 if there is none you may read."""
        _check_ids(cluster, member)
        profile = await read(storage.get_profile, cluster, member, viewer=viewer)
        if profile is None:
            raise ApiError(
                404, "not_found", f"no profile of member {member!r} in cluster {cluster!r}"
            )
        return {
            "cluster": profile.cluster,
            "member": profile.member,
            "name": profile.name,
            "contact_email": profile.contact_email,
            "contact_phone": profile.contact_phone,
            "voivodeship": profile.voivodeship,
            "city": profile.city,
            "description": profile.description,
        }

    @app.get(
        "/api/v1/stats/capacity",
        tags=["resources"],
        summary="Free machine hours of the cluster per day",
        responses={**_FORBIDDEN, **API_ERRORS},
    )
    async def get_capacity(
        request: Request,
        viewer: Caller,
        days: Annotated[
            int, Query(ge=1, le=MAX_CAPACITY_DAYS, description="How many days back")
        ] = 30,
    ) -> dict[str, Any]:
        """Return free hours per day to coordinators and on a server without tokens; else 403."""
        if request.app.state.authenticator.required and not viewer.coordinator:
            raise ApiError(403, "forbidden", "the capacity statistics are for coordinators only")
        points = await read(storage.cluster_capacity, viewer=viewer, now=clock(), days=days)
        return {
            "items": [
                {
                    "day": point.day.isoformat(),
                    "free_hours": point.free_hours,
                    "offers": point.offers,
                }
                for point in points
            ],
            "days": days,
        }


def _check_ids(*values: str) -> None:
    for name, value in zip(("cluster", "member", "resource"), values, strict=False):
        reject_nul(name, value)


def reject_nul(name: str, value: str | None) -> None:
    """Raise 422 for a NUL character, which PostgreSQL text cannot hold."""
    if value is not None and "\x00" in value:
        raise ApiError(422, "invalid_parameter", f"parameter '{name}' contains a NUL character")


def _offer_not_found(cluster: str, member: str, resource: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"no offer of resource {resource!r} of member {member!r} in cluster {cluster!r}",
    )
