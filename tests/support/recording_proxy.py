"""A loopback TCP proxy that records every byte passing through it, in both directions.

Put it between a client and a server to see exactly what the client sends on the wire, including
protocol framing such as the MQTT CONNECT packet, not only the messages a subscriber receives.
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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        upstream = self._pipe(reader, upstream_writer, self.client_bytes)
        downstream = self._pipe(upstream_reader, writer, self.server_bytes)
        await asyncio.gather(upstream, downstream, return_exceptions=True)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray
    ) -> None:
        try:
            while chunk := await reader.read(CHUNK_BYTES):
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
