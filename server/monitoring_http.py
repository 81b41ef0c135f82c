"""The HTTP listener of ``server ingest --metrics-port``: ``/metrics`` and ``/healthz`` only.

It listens on 127.0.0.1 only, so the metrics of a worker stay on its host unless the operator sets
up a reverse proxy there or runs the scraping Prometheus (or its agent mode) on that host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import uvicorn
from fastapi import FastAPI

from kooperant.local_http import EmbeddedUvicorn, bound_socket
from server.errors import InvalidSettingError

logger = logging.getLogger(__name__)

MONITORING_HOST = "127.0.0.1"
_STARTUP_POLL_SECONDS = 0.02


async def serve_monitoring(
    app: FastAPI, port: int, main: Coroutine[Any, Any, None], stop: asyncio.Event
) -> None:
    """Run ``main`` while ``app`` listens on 127.0.0.1:``port``; stop listening when it ends.

    Raises ``InvalidSettingError`` before running ``main`` when the port cannot be bound.
    """
    try:
        sock = bound_socket(MONITORING_HOST, port)
    except OSError as error:
        main.close()
        raise InvalidSettingError(
            "metrics_port_unusable", host=MONITORING_HOST, port=port, detail=str(error)
        ) from error
    # No access log: a scrape every few seconds would fill the log.
    config = uvicorn.Config(
        app, log_config=None, lifespan="off", access_log=False, proxy_headers=False
    )
    http = EmbeddedUvicorn(config)
    with sock:
        listener = asyncio.create_task(http.serve(sockets=[sock]), name="metrics http")
        try:
            await _wait_started(http, listener)
            if http.started:
                logger.info(
                    "Metrics and health check listening on http://%s:%d/", MONITORING_HOST, port
                )
            await main
        finally:
            http.should_exit = True
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def _wait_started(http: uvicorn.Server, listener: asyncio.Task[None]) -> None:
    while True:
        if http.started or listener.done():
            return
        await asyncio.sleep(_STARTUP_POLL_SECONDS)
