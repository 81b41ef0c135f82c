"""The monitoring routes ``GET /healthz`` and ``GET /metrics``, and the app of ``server ingest``.

Both routes need no API token or dashboard session, so that a load balancer and Prometheus can
call them. ``/healthz`` shows no offer data. ``/metrics`` has no member, cluster or resource in
its labels, and an operator who wants it closed anyway sets a metrics token
(``--metrics-token-file``): the route then needs the header ``Authorization: Bearer TOKEN``,
which Prometheus sends with ``authorization: {credentials_file: ...}`` in its scrape config.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from server.api_errors import error_response
from server.api_models import Health
from server.api_openapi import HEALTH_ERRORS
from server.errors import StorageError
from server.metrics import CONTENT_TYPE, ServerMetrics
from server.status import ServerStatus
from server.storage import Storage

logger = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
# The /healthz value of a failed database check. The error itself names the database user,
# host and name, so it goes only to the log, because callers are anonymous.
DATABASE_UNAVAILABLE = "unavailable"


def add_monitoring_routes(
    app: FastAPI,
    storage: Storage,
    status: ServerStatus,
    metrics: ServerMetrics,
    metrics_token: str | None = None,
) -> None:
    """Register ``/healthz`` and ``/metrics`` on ``app``; ``metrics_token`` closes ``/metrics``."""
    database_log = DatabaseCheckLog()

    @app.get(
        HEALTH_PATH,
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
        return await health_response(storage, status, database_log)

    @app.get(
        METRICS_PATH,
        tags=["health"],
        summary="Prometheus metrics of ingest, the database and the request router",
        response_class=Response,
        responses={
            200: {
                "content": {"text/plain": {}},
                "description": "The metrics in the Prometheus text format 0.0.4",
            },
            401: {"description": "Missing or wrong metrics token (only with --metrics-token-file)"},
            **HEALTH_ERRORS,
        },
    )
    async def metrics_page(request: Request) -> Response:
        """Needs no token unless the server has a metrics token; no label names a member."""
        if metrics_token is not None and not _token_matches(request, metrics_token):
            return error_response(
                401,
                "unauthorized",
                "This server's metrics need the header Authorization: Bearer with its metrics "
                "token (--metrics-token-file)",
                {"WWW-Authenticate": "Bearer"},
            )
        return Response(await metrics.render(), media_type=CONTENT_TYPE)


class DatabaseCheckLog:
    """Logs a failed database check of ``/healthz`` once when it starts failing and once after."""

    def __init__(self) -> None:
        self._failing = False

    def failed(self, error: StorageError) -> None:
        if not self._failing:
            logger.warning("Health check: database unavailable: %s", error)
        self._failing = True

    def passed(self) -> None:
        if self._failing:
            logger.info("Health check: database available again")
        self._failing = False


async def health_response(
    storage: Storage, status: ServerStatus, database_log: DatabaseCheckLog
) -> JSONResponse:
    """Check the database with ``SELECT 1`` and report ingest's broker connection; 200 or 503."""
    body = {"status": "ok", "database": "ok", "broker": "connected"}
    try:
        await asyncio.to_thread(storage.check_health)
    except StorageError as error:
        database_log.failed(error)
        body["status"] = "failing"
        body["database"] = DATABASE_UNAVAILABLE
    else:
        database_log.passed()
    if not status.broker_connected:
        body["status"] = "failing"
        body["broker"] = f"disconnected: {status.broker_error or 'not connected yet'}"
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


def monitoring_app(
    storage: Storage,
    status: ServerStatus,
    metrics: ServerMetrics,
    metrics_token: str | None = None,
) -> FastAPI:
    """Return an app with only ``/healthz`` and ``/metrics``, for ``server ingest``."""
    app = FastAPI(title="kooperant ingest", docs_url=None, redoc_url=None, openapi_url=None)
    add_monitoring_routes(app, storage, status, metrics, metrics_token)
    return app


def _token_matches(request: Request, token: str) -> bool:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())
