"""The HTTP API (``/api/v1``), the health check and the dashboard page.

Every error response has the body ``{"error": {"code": "...", "message": "..."}}``. API messages
are English because API clients are programs and their developers; the dashboard is localized.
Each read returns the caller's view (see ``server.storage.visibility``): with a tokens file, the
member behind the bearer token; without one, an anonymous caller.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kooperant.protocol import ResourceKind
from server.api_errors import ApiError, add_error_handlers, read
from server.api_input import check_parameters
from server.api_json import member_json, rejected_json, resource_json
from server.api_models import Health, MemberPage, RejectedMessagePage, ResourcePage
from server.api_openapi import API_DESCRIPTION, API_ERRORS, HEALTH_ERRORS, TAGS, document_api
from server.auth import Authenticator
from server.dashboard_routes import add_dashboard_routes
from server.errors import StorageError
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage, Viewer
from server.tokens import TokenStore

MAX_LIMIT = 1000
# SQLite and PostgreSQL take OFFSET as a signed 64-bit integer and fail on larger values.
MAX_OFFSET = 2**63 - 1

# "+01:00" typed into a URL unencoded arrives as " 01:00" because "+" means space in a query.
_OFFSET_WITH_SPACE = re.compile(r"^(.*\d) (\d{2}:?\d{2})$")
# Declares the bearer scheme in the OpenAPI document; ``Authenticator`` does the check.
_BEARER = HTTPBearer(auto_error=False, description="A member's API token")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Viewer:
    # Async, so it runs in the event loop: a plain function would run in a worker thread, and
    # two threads could reload the tokens file at once.
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.api_viewer(request)


# The viewer of an API request, or a 401 response. Every /api/v1 route takes this parameter.
Caller = Annotated[Viewer, Depends(_caller)]


def create_app(
    storage: Storage,
    status: ServerStatus,
    *,
    tokens: TokenStore | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """Return the FastAPI application serving ``storage`` and reporting ``status``.

    ``tokens`` turns on per-member access; ``clock`` decides which offers have expired.
    """
    app = FastAPI(
        title="kooperant aggregator",
        version="1",
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_tags=TAGS,
        dependencies=[Depends(check_parameters)],
    )
    add_error_handlers(app)
    authenticator = Authenticator(tokens)
    app.state.authenticator = authenticator

    @app.get(
        "/api/v1/resources",
        tags=["resources"],
        summary="Search the current offers",
        response_model=None,
        responses={
            200: {
                "model": ResourcePage,
                "description": "One page of the offers the caller may see",
            },
            **API_ERRORS,
        },
    )
    async def list_resources(
        viewer: Caller,
        kind: Annotated[list[ResourceKind] | None, Query()] = None,
        capability: Annotated[list[str] | None, Query()] = None,
        member: str | None = None,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        window_start = _parse_time_parameter("from", from_)
        window_end = _parse_time_parameter("to", to)
        if window_start is not None and window_end is not None and window_end <= window_start:
            raise ApiError(
                422,
                "invalid_window",
                f"query parameter 'to' ({to}) must be after 'from' ({from_})",
            )
        query = ResourceQuery(
            kinds=tuple(str(item) for item in kind or ()),
            capabilities=tuple(capability or ()),
            member=member,
            window_start=window_start,
            window_end=window_end,
            limit=limit,
            offset=offset,
        )
        page = await read(storage.list_resources, query, viewer=viewer, now=clock())
        return {
            "items": [resource_json(item, viewer) for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    @app.get(
        "/api/v1/members",
        tags=["members"],
        summary="List the members and their connection status",
        response_model=None,
        responses={
            200: {"model": MemberPage, "description": "One page of members"},
            **API_ERRORS,
        },
    )
    async def list_members(
        viewer: Caller,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        """Members with an offer the caller may see or with a status, and the calling member.

        Ordered by cluster and member.
        """
        page = await read(
            storage.page_members, viewer=viewer, now=clock(), limit=limit, offset=offset
        )
        return {
            "items": [member_json(item) for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    @app.get(
        "/api/v1/rejected-messages",
        tags=["rejected messages"],
        summary="List the messages ingest rejected, newest first",
        response_model=None,
        responses={
            200: {"model": RejectedMessagePage, "description": "One page of rejected messages"},
            **API_ERRORS,
        },
    )
    async def list_rejected(
        viewer: Caller,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        """A member caller gets only the messages on its own topics."""
        page = await read(storage.page_rejected, viewer=viewer, limit=limit, offset=offset)
        return {
            "items": [rejected_json(item) for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Check the database and the broker connection",
        responses={
            200: {"model": Health, "description": "Both work"},
            503: {"model": Health, "description": "The database or the broker connection fails"},
            **HEALTH_ERRORS,
        },
    )
    async def health() -> JSONResponse:
        """Needs no token and shows no offer data."""
        body = {"status": "ok", "database": "ok", "broker": "connected"}
        try:
            await asyncio.to_thread(storage.check_health)
        except StorageError as error:
            body["status"] = "failing"
            body["database"] = str(error)
        if not status.broker_connected:
            body["status"] = "failing"
            body["broker"] = f"disconnected: {status.broker_error or 'not connected yet'}"
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    add_dashboard_routes(app, storage, authenticator, clock)
    document_api(app)
    return app


def _parse_time_parameter(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    match = _OFFSET_WITH_SPACE.match(text)
    if match:
        text = f"{match.group(1)}+{match.group(2)}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter '{name}' value {value!r} is not an ISO 8601 date-time; "
            "use e.g. 2026-12-04T08:00:00+01:00",
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter '{name}' value {value!r} has no UTC offset; "
            "add one, e.g. 2026-12-04T08:00:00+01:00 or 2026-12-04T07:00:00Z",
        )
    try:
        # Storage converts to UTC, which fails for e.g. 0001-01-01T00:00:00+01:00 (year 0 in UTC).
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter '{name}' value {value!r} is out of range; "
            "use a date-time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
        ) from None
