"""A loopback TCP proxy that records every byte passing through it, in both directions.

Put it between a client and a server to see exactly what the client sends on the wire, including
protocol framing such as the MQTT CONNECT packet, not only the messages a subscriber receives.

``stop_forwarding`` makes the link half-open: sockets stay open in both directions, but the bytes
read from either side are dropped, as on a link whose far end vanished without closing.
``resume_forwarding`` forwards again; connections whose bytes were dropped stay out of step, so
only connections made after it work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

CHUNK_BYTES = 65536


class RecordingProxy:
    """Forwards ``127.0.0.1:port`` to the target address and keeps the bytes it forwards."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.client_bytes = bytearray()
        """Everything clients sent to the server."""
        self.server_bytes = bytearray()
        """Everything the server sent to clients."""
        self.port = 0
        self.forwarding = True
        """False while bytes are dropped instead of forwarded."""

    def stop_forwarding(self) -> None:
        """Drop every byte from now on, in both directions, without closing a socket."""
        self.forwarding = False

    def resume_forwarding(self) -> None:
        """Forward bytes again."""
        self.forwarding = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        upstream = self._pipe(reader, upstream_writer, self.client_bytes)
        downstream = self._pipe(upstream_reader, writer, self.server_bytes)
        await asyncio.gather(upstream, downstream, return_exceptions=True)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                if not self.forwarding:
                    continue
                record.extend(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RecordingProxy]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self
            server.close()
