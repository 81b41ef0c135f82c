"""The HTTP API (``/api/v1``), the health check and the dashboard page.

Every error response has the body ``{"error": {"code": "...", "message": "..."}}``. API messages
are English because API clients are programs and their developers; the dashboard is localized.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kooperant.intervals import Interval
from kooperant.protocol import ResourceKind
from server.dashboard import render_dashboard
from server.errors import StorageError
from server.status import ServerStatus
from server.storage import (
    MemberRecord,
    RejectedRecord,
    ResourceQuery,
    ResourceRecord,
    Storage,
)

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MAX_LIMIT = 1000
REJECTED_EXCERPT_CHARS = 1000
# TODO: page the dashboard; a cluster with more resources shows only the first 1000.
DASHBOARD_MAX_RESOURCES = 1000

# "+01:00" typed into a URL unencoded arrives as " 01:00" because "+" means space in a query.
_OFFSET_WITH_SPACE = re.compile(r"^(.*\d) (\d{2}:?\d{2})$")


class ApiError(Exception):
    """An error returned to the client with HTTP ``status`` and the standard error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def create_app(storage: Storage, status: ServerStatus) -> FastAPI:
    """Return the FastAPI application serving ``storage`` and reporting ``status``."""
    app = FastAPI(title="kooperant aggregator", version="1", docs_url="/api/docs")
    _add_error_handlers(app)

    @app.get("/api/v1/resources")
    async def list_resources(
        kind: ResourceKind | None = None,
        capability: Annotated[list[str] | None, Query()] = None,
        member: str | None = None,
        from_: Annotated[str | None, Query(alias="from")] = None,
        to: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
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
            kind=str(kind) if kind is not None else None,
            capabilities=tuple(capability or ()),
            member=member,
            window_start=window_start,
            window_end=window_end,
            limit=limit,
            offset=offset,
        )
        page = await _read(storage.list_resources, query)
        return {
            "items": [resource_json(item) for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    @app.get("/api/v1/members")
    async def list_members() -> dict[str, Any]:
        members = await _read(storage.list_members)
        return {"items": [_member_json(item) for item in members]}

    @app.get("/api/v1/rejected-messages")
    async def list_rejected(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    ) -> dict[str, Any]:
        rejected = await _read(storage.list_rejected, limit)
        return {"items": [_rejected_json(item) for item in rejected], "limit": limit}

    @app.get("/healthz")
    async def health() -> JSONResponse:
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

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request, lang: str | None = None) -> HTMLResponse:
        page = await _read(storage.list_resources, ResourceQuery(limit=DASHBOARD_MAX_RESOURCES))
        members = await _read(storage.list_members)
        html = render_dashboard(
            page.items,
            members,
            lang_parameter=lang,
            accept_language=request.headers.get("accept-language"),
        )
        return HTMLResponse(html)

    return app


async def _read(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except StorageError as error:
        logger.error("API request failed: %s", error)
        raise ApiError(503, "database_unavailable", str(error)) from error


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
    return parsed


def _time_json(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _interval_json(interval: Interval) -> dict[str, str | None]:
    return {"start": _time_json(interval.start), "end": _time_json(interval.end)}


def resource_json(record: ResourceRecord) -> dict[str, Any]:
    """Return the API representation of one resource."""
    return {
        "cluster": record.cluster,
        "member": record.member,
        "resource": record.resource,
        "kind": record.kind,
        "name": record.name,
        "capabilities": list(record.capabilities),
        "state": record.state,
        "state_since": _time_json(record.state_since),
        "free_hours": round(record.free_hours, 4) if record.free_hours is not None else None,
        "free_intervals": [_interval_json(item) for item in record.free_intervals],
        "horizon": _interval_json(record.horizon) if record.horizon is not None else None,
        "amounts": list(record.amounts),
        "generated_at": _time_json(record.generated_at),
        "updated_at": _time_json(record.received_at),
    }


def _member_json(record: MemberRecord) -> dict[str, Any]:
    return {
        "cluster": record.cluster,
        "member": record.member,
        "resources": record.resources,
        "first_seen": _time_json(record.first_seen),
        "last_seen": _time_json(record.last_seen),
    }


def _rejected_json(record: RejectedRecord) -> dict[str, Any]:
    excerpt = record.payload[:REJECTED_EXCERPT_CHARS]
    return {
        "id": record.id,
        "received_at": _time_json(record.received_at),
        "topic": record.topic,
        "reason": record.reason,
        "payload_excerpt": excerpt,
        "payload_truncated": len(record.payload) > len(excerpt),
    }


def _error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        where = " ".join(location[:1]) + (
            f" parameter '{location[-1]}'" if len(location) > 1 else ""
        )
        value = item.get("input")
        shown = f" value {value!r}" if value is not None else ""
        parts.append(f"{where.strip()}{shown}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, error: ApiError) -> JSONResponse:
        return _error_response(error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _error_response(422, "invalid_parameter", _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else f"http_{error.status_code}"
        return _error_response(error.status_code, code, str(error.detail))
