"""A limit on the body size of the API's write routes, rejected with 413 and the error body.

A body announced larger than the limit by ``Content-Length`` is rejected before any of it is
read. A body without ``Content-Length`` (chunked transfer encoding), or with a false one, is
counted while the route reads it, and the read fails with the 413 error once the count passes
the limit, so the server keeps at most the limit and one more chunk of the body in memory.
"""

from __future__ import annotations

import logging
import re

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api_errors import http_error_response

logger = logging.getLogger(__name__)


class BodyLimitMiddleware:
    """Limit the body of POST requests whose path matches ``paths`` to ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, paths: re.Pattern[str], max_bytes: int) -> None:
        self.app = app
        self.paths = paths
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return

        announced = _content_length(scope)
        if announced is not None and announced > self.max_bytes:
            logger.warning(
                "Rejected %s with a body of %d bytes, over %d",
                scope["path"],
                announced,
                self.max_bytes,
            )
            error = StarletteHTTPException(413, _too_large_message(self.max_bytes, announced))
            await http_error_response(error)(scope, receive, send)
            return

        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    logger.warning(
                        "Rejected %s with a body over %d bytes", scope["path"], self.max_bytes
                    )
                    # FastAPI passes an HTTPException raised while it reads the body on to the
                    # app's HTTP error handler, which returns the standard error body.
                    raise StarletteHTTPException(413, _too_large_message(self.max_bytes, None))
            return message

        await self.app(scope, receive_counted, send)

    def _applies(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and self.paths.fullmatch(scope["path"]) is not None
        )


def _content_length(scope: Scope) -> int | None:
    """Return the ``Content-Length`` of the request, or ``None`` if it is missing or invalid."""
    text = Headers(scope=scope).get("content-length")
    if text is None or not text.strip().isdigit():
        return None
    return int(text)


def _too_large_message(max_bytes: int, announced: int | None) -> str:
    size = f"of {announced} bytes " if announced is not None else ""
    return (
        f"the request body {size}is over the limit of {max_bytes} bytes; "
        "send a smaller body, e.g. a shorter message"
    )
