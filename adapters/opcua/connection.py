"""Making an asyncua client for one server, and closing it without hanging the adapter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaError

from adapters.opcua.keepalive import watchdog_interval_seconds
from adapters.opcua.settings import OpcUaSettings

_LOGGER = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 600_000


def make_client(
    settings: OpcUaSettings, on_connection_lost: Callable[[Exception], Coroutine[Any, Any, None]]
) -> Client:
    """Return a client for ``settings.url`` that calls ``on_connection_lost`` when it drops."""
    client = Client(
        settings.url,
        timeout=settings.timeout_seconds,
        watchdog_intervall=watchdog_interval_seconds(settings),
    )
    # asyncua requests one hour by default and warns when a server grants less, and asyncua's own
    # server grants at most ten minutes. Keep-alive traffic renews the session anyway.
    client.session_timeout = SESSION_TIMEOUT_MS
    if settings.username is not None and settings.password is not None:
        client.set_user(settings.username)
        client.set_password(settings.password.get_secret_value())
    client.connection_lost_callback = on_connection_lost
    return client


async def disconnect(client: Client, settings: OpcUaSettings) -> None:
    """Close the session and connection, giving up after ``settings.timeout_seconds``."""
    # Not asyncio.wait_for: on Python 3.11.7 it drops a cancellation that arrives in the loop
    # step in which the disconnect ends, and stop() then waits forever. The disconnect runs in
    # its own task because asyncua 2.1's close_session also drops a cancellation.
    task = asyncio.create_task(client.disconnect())
    task.add_done_callback(lambda done: _log_disconnect_error(done, settings.url))
    try:
        done, _ = await asyncio.wait({task}, timeout=settings.timeout_seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        _LOGGER.debug(
            "disconnect from %s timed out after %s s", settings.url, settings.timeout_seconds
        )


def _log_disconnect_error(task: asyncio.Task[None], url: str) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if isinstance(error, OSError | TimeoutError | UaError):
        # The server is gone or the session is already closed, so nothing is left to release.
        _LOGGER.debug("disconnect from %s failed: %r", url, error)
    elif error is not None:
        _LOGGER.error("disconnect from %s failed unexpectedly", url, exc_info=error)
