"""The agent's local status endpoint: the status document, the health check and metrics.

``GET /status`` returns the status document (``agent.status``), ``GET /healthz`` the health check
(``agent.health``, 200 or 503) and ``GET /metrics`` the Prometheus metrics (``agent.metrics``).

It listens on the ``status`` host and port of the agent config (127.0.0.1:8791 by default). The
document contains no secrets, only states, counters and error messages without credentials. A port
that cannot be bound is logged and the agent runs on without the endpoint: status is for
diagnosis, and publishing must not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.config import StatusSettings
from agent.health import agent_health
from agent.metrics import metrics_registry, metrics_text
from agent.status import AgentStatus, status_document
from kooperant.local_http import EmbeddedUvicorn, bound_socket

logger = logging.getLogger(__name__)

STARTUP_POLL_SECONDS = 0.05


METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def status_app(read_status: Callable[[], AgentStatus]) -> Starlette:
    """Return the ASGI app serving ``read_status()`` at ``/status``, ``/healthz``, ``/metrics``."""
    registry = metrics_registry(read_status)

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(status_document(read_status()))

    async def healthz(request: Request) -> JSONResponse:
        health = agent_health(read_status())
        return JSONResponse(health.document, status_code=200 if health.healthy else 503)

    async def metrics(request: Request) -> Response:
        return Response(metrics_text(registry), media_type=METRICS_CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/status", status, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


async def serve_status(
    settings: StatusSettings, read_status: Callable[[], AgentStatus], stop: asyncio.Event
) -> None:
    """Serve the status endpoint until ``stop`` is set; without it if the port is unusable."""
    try:
        sock = bound_socket(settings.host, settings.port)
    except OSError as error:
        logger.error(
            "Status endpoint %s not started: %s. Set another status port in the agent config or "
            "stop the program that uses it; the agent runs on without the endpoint",
            settings.url,
            error,
        )
        # The runner takes a helper that ends before stop for a crash, so this one waits.
        await stop.wait()
        return
    # No access log: a monitoring script that polls status would fill the agent's log.
    # No proxy headers: uvicorn would otherwise take the client address from X-Forwarded-For
    # of any local client.
    config = uvicorn.Config(
        status_app(read_status),
        log_config=None,
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        forwarded_allow_ips=[],
    )
    http = EmbeddedUvicorn(config)
    with sock:
        task = asyncio.create_task(http.serve(sockets=[sock]), name="status endpoint")
        try:
            await _wait_started(http, task)
            if http.started:
                logger.info("Status endpoint listening on %s", settings.url)
            await stop.wait()
        finally:
            http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _wait_started(http: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while True:
        if http.started or task.done():
            return
        await asyncio.sleep(STARTUP_POLL_SECONDS)
