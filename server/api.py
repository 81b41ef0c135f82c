"""The HTTP API (``/api/v1``), the health check and the dashboard page.

Every error response has the body ``{"error": {"code": "...", "message": "..."}}``. API messages
are English because API clients are programs and their developers; the dashboard is localized.
Each read returns the caller's view (see ``server.storage.visibility``): the member or coordinator
behind the bearer token or the dashboard session, or an anonymous caller while the server is open
(no tokens file and no dashboard account; see ``server.auth``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query

from server.account_routes import add_account_routes
from server.api_caller import Caller
from server.api_docs import add_api_docs
from server.api_errors import add_error_handlers, read
from server.api_input import check_parameters
from server.api_json import member_json, rejected_json, resource_json
from server.api_models import MemberPage, RejectedMessagePage, ResourcePage
from server.api_openapi import API_DESCRIPTION, API_ERRORS, TAGS, document_api
from server.auth import Authenticator
from server.error_pages import add_error_pages
from server.login_limits import LoginLimiter
from server.member_routes import add_member_routes
from server.metrics import ServerMetrics
from server.monitoring_routes import add_monitoring_routes
from server.request_api import add_request_api_routes
from server.request_counts import add_request_counts_routes
from server.request_form_routes import add_request_form_routes
from server.request_routes import add_request_routes
from server.search_api import add_search_api_routes, resource_query
from server.search_routes import add_search_routes
from server.security_headers import SecurityHeadersMiddleware
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
    login_limiter: LoginLimiter | None = None,
    requests_changed: asyncio.Event | None = None,
    metrics: ServerMetrics | None = None,
    metrics_token: str | None = None,
) -> FastAPI:
    """Return the FastAPI application serving ``storage`` and reporting ``status``.

    ``tokens`` turns on per-member access; ``clock`` decides which offers and sessions have
    expired; ``login_limiter`` counts failed sign-ins (a new one by default).
    ``requests_changed`` is set after a request was created or withdrawn, so that the request
    router (``RequestRouter.wakeup``) sends it at once; it is ``app.state.requests_changed``.
    ``metrics`` serves ``/metrics`` (counters of this app's ``status`` and ``storage`` by default),
    and ``metrics_token`` makes that page need ``Authorization: Bearer``.
    """
    app = FastAPI(
        title="kooperant aggregator",
        version="1",
        description=API_DESCRIPTION,
        openapi_url="/api/openapi.json",
        # add_api_docs serves the docs page with local Swagger UI files instead of a CDN.
        docs_url=None,
        redoc_url=None,
        # The API uses bearer tokens only, so Swagger UI needs no OAuth2 redirect page.
        swagger_ui_oauth2_redirect_url=None,
        openapi_tags=TAGS,
        dependencies=[Depends(check_parameters)],
    )
    add_error_handlers(app)
    # Added last, so it is outside the error middleware and marks its 500 responses too.
    app.add_middleware(SecurityHeadersMiddleware)
    authenticator = Authenticator(tokens, storage, clock)
    app.state.authenticator = authenticator
    app.state.requests_changed = requests_changed or asyncio.Event()

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
    add_request_api_routes(app, storage, clock, app.state.requests_changed)

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
        """A coordinator gets its cluster's messages, a member only those on its own topics.

        The payload excerpts may contain restricted fields, such as an offer's audience, of the
        caller's own cluster or member.
        """
        page = await read(storage.page_rejected, viewer=viewer, limit=limit, offset=offset)
        return {
            "items": [rejected_json(item) for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    add_monitoring_routes(
        app, storage, status, metrics or ServerMetrics(storage, status, clock), metrics_token
    )

    add_account_routes(app, storage, authenticator, clock, login_limiter or LoginLimiter())
    add_search_routes(app, storage, authenticator, clock)
    add_member_routes(app, storage, authenticator, clock)
    add_request_form_routes(app, storage, authenticator, clock)
    add_request_routes(app, storage, authenticator, clock)
    add_request_counts_routes(app, storage, authenticator, clock)
    add_error_pages(app, authenticator)
    add_api_docs(app)
    document_api(app)
    return app
