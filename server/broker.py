"""An MQTT broker inside the server process, for a single-machine setup and the demo.

It runs amqtt 0.12 on loopback with anonymous clients allowed. amqtt 0.12.1 did not deliver QoS 1
messages queued for a persistent session after it reconnected, so kooperant relies on retained
messages (which it does deliver) rather than on broker queues.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker

from server.errors import BrokerPortInUseError

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 3.0


class EmbeddedBroker:
    """An amqtt broker listening on ``host:port`` while the ``async with`` block runs.

    ``port=0`` picks a free port, and ``port`` and ``url`` then contain the chosen one. A taken
    port raises ``BrokerPortInUseError`` on entry.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self.url = f"mqtt://{host}:{port}"
        self._broker: Any = None

    async def __aenter__(self) -> Self:
        # amqtt binds with SO_REUSEADDR and reports a bind failure only as a generic
        # BrokerError, so the port is probed first to give a precise error.
        if self.port != 0:
            _check_port_free(self.host, self.port)
        broker = Broker(_broker_config(self.host, self.port))
        await broker.start()
        self._broker = broker
        self.port = _listening_port(broker)
        self.url = f"mqtt://{self.host}:{self.port}"
        logger.info("Embedded MQTT broker listening on %s", self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._broker is None:
            return
        broker, self._broker = self._broker, None
        _disconnect_clients(broker)
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_SECONDS):
                await broker.shutdown()
        except TimeoutError:
            # amqtt 0.12.1 could wait forever for the reader task of a client that still had a
            # QoS 1 delivery in flight. Dropping the connections first avoided that in the
            # tests, so this limit is only a safety net.
            logger.warning(
                "Embedded MQTT broker on %s did not shut down within %.0f s; closing it forcibly",
                self.url,
                SHUTDOWN_TIMEOUT_SECONDS,
            )
            await _force_close(broker)
        logger.info("Embedded MQTT broker on %s stopped", self.url)


def _check_port_free(host: str, port: int) -> None:
    """Raise ``BrokerPortInUseError`` if something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise BrokerPortInUseError("broker_port_in_use", host=host, port=port) from error
            raise


def _broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


def _listening_port(broker: Any) -> int:
    server = broker._servers["default"].instance
    port: int = server.sockets[0].getsockname()[1]
    return port


def _disconnect_clients(broker: Any) -> None:
    """Drop every client connection so that each session's reader task ends at once."""
    for _session, handler in list(broker._sessions.values()):
        stream = getattr(handler.writer, "_writer", None)
        if stream is not None:
            stream.transport.abort()


async def _force_close(broker: Any) -> None:
    """Close the listeners and background tasks of an amqtt broker whose shutdown hung."""
    for server in broker._servers.values():
        server.instance.close()
    tasks = [broker._broadcast_task, broker._session_monitor_task]
    running = [task for task in tasks if task is not None and not task.done()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=1.0)
