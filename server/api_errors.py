"""The API's error type, the handlers that give every error the same JSON body, and ``read``.

The body is ``{"error": {"code": "...", "message": "..."}}``; a request validation error adds
``details``, one entry per failing parameter. Messages are English because API clients are
programs and their developers. An unexpected exception becomes a 500 with the code
``internal_error`` and a message without internals, and its traceback goes to the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import StorageError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Codes of the HTTP errors that routing and Starlette raise; any other status gets "http_{status}".
_HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}
# Characters of a rejected value that an error message shows, at most.
MAX_SHOWN_CHARACTERS = 40
DATABASE_UNAVAILABLE_MESSAGE = (
    "the server's database is unavailable; try again later, and tell the cluster coordinator "
    "if it lasts"
)
INTERNAL_ERROR_MESSAGE = (
    "internal server error; the server logged the details, so report the time of the request "
    "to the cluster coordinator"
)


class ApiError(Exception):
    """An error returned to the client with HTTP ``status`` and the standard error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


async def read(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a storage read in a worker thread; a failed read becomes ``ApiError`` 503."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except StorageError as error:
        # The error names the database user, host and name, which the caller may not see.
        logger.error("API request failed: %s", error)
        raise ApiError(503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE) from error


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    details: list[dict[str, str]] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Give every error of ``app`` the standard body, including unexpected exceptions."""

    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [_validation_detail(item) for item in error.errors()]
        message = "; ".join(detail["message"] for detail in details) or "invalid request"
        return error_response(422, "invalid_parameter", message, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return http_error_response(error)

    app.add_middleware(InternalErrorMiddleware)


def http_error_response(error: StarletteHTTPException) -> JSONResponse:
    """Return the standard error body of an HTTP error that routing or Starlette raised."""
    code = _HTTP_ERROR_CODES.get(error.status_code, f"http_{error.status_code}")
    return error_response(error.status_code, code, str(error.detail), error.headers)


class InternalErrorMiddleware:
    """Turn an exception no handler took into a 500 with the standard error body.

    The traceback is logged with the method and path. Starlette's own last-resort handler would
    send a plain-text response and raise the exception again into the server. An exception raised
    after the response started cannot change the response any more, so it is raised again.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception:
            logger.exception("Unexpected error in %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)
            await response(scope, receive, send)


def _validation_detail(item: Mapping[str, Any]) -> dict[str, str]:
    """Return the location, parameter name and message of one pydantic validation error.

    The message never repeats the whole input: only a scalar value is shown, cut to
    ``MAX_SHOWN_CHARACTERS``, because the input of a missing field is the whole body.
    """
    # "loc" is ("query", "kind") for a parameter, ("query", "kind", 1) for a repeated one, and
    # ("body", "contact", "name") for a field of the JSON body.
    location = [str(part) for part in item.get("loc", ())]
    where = location[0] if location else "request"
    kind = item.get("type")
    if where == "body" and kind == "json_invalid":
        reason = item.get("ctx", {}).get("error", "invalid syntax")
        message = f"the body is not valid JSON: {reason}; send one JSON object"
        return {"location": where, "parameter": "", "message": message}
    if where == "body":
        parameter = ".".join(location[1:])
    else:
        parameter = location[1] if len(location) > 1 else ""
    described = f"{where} parameter '{parameter}'" if parameter else where
    value = item.get("input")
    shown = ""
    if kind != "missing" and isinstance(value, str | int | float):
        shown = f" value {_shorten(value)}"
    return {
        "location": where,
        "parameter": parameter,
        "message": f"{described}{shown}: {item.get('msg', 'invalid')}",
    }


def _shorten(value: str | int | float) -> str:
    """Return the repr of ``value``, cut to its first ``MAX_SHOWN_CHARACTERS`` characters."""
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARACTERS:
        return f"{value[:MAX_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"
    return repr(value)
