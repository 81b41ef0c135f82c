"""The HTTP API (``/api/v1``), the health check and the dashboard page.

Every error response has the body ``{"error": {"code": "...", "message": "..."}}``. API messages
are English because API clients are programs and their developers; the dashboard is localized.
Each read returns the caller's view (see ``server.storage.visibility``): with a tokens file, the
member behind the bearer token; without one, an anonymous caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse

from server.api_caller import Caller
from server.api_errors import add_error_handlers, read
from server.api_json import member_json, rejected_json, resource_json
from server.auth import Authenticator
from server.dashboard_routes import add_dashboard_routes
from server.errors import StorageError
from server.member_routes import add_member_routes
from server.search_api import add_search_api_routes, resource_query
from server.search_routes import add_search_routes
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage
from server.tokens import TokenStore

MAX_LIMIT = 1000
# SQLite and PostgreSQL take OFFSET as a signed 64-bit integer and fail on larger values.
MAX_OFFSET = 2**63 - 1


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    app = FastAPI(title="kooperant aggregator", version="1", docs_url="/api/docs")
    add_error_handlers(app)
    authenticator = Authenticator(tokens)
    app.state.authenticator = authenticator

    @app.get("/api/v1/resources", summary="Search the current offers")
    async def list_resources(
        viewer: Caller, query: Annotated[ResourceQuery, Depends(resource_query)]
    ) -> dict[str, Any]:
        page = await read(storage.list_resources, query, viewer=viewer, now=clock())
        return {
            "items": [resource_json(item, viewer) for item in page.items],
            "total": page.total,
            "limit": query.limit,
            "offset": query.offset,
        }

    add_search_api_routes(app, storage, clock)

    @app.get("/api/v1/members")
    async def list_members(viewer: Caller) -> dict[str, Any]:
        members = await read(storage.list_members, viewer=viewer, now=clock())
        return {"items": [member_json(item) for item in members]}

    @app.get("/api/v1/rejected-messages")
    async def list_rejected(
        viewer: Caller,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    ) -> dict[str, Any]:
        rejected = await read(storage.list_rejected, limit, viewer=viewer)
        return {"items": [rejected_json(item) for item in rejected], "limit": limit}

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

    add_dashboard_routes(app, storage, authenticator, clock)
    add_search_routes(app, storage, authenticator, clock)
    add_member_routes(app, storage, authenticator, clock)
    return app
