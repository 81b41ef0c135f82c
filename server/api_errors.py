"""The API's error type, the handlers that give every error the same JSON body, and ``read``.

The body is ``{"error": {"code": "...", "message": "..."}}``. Messages are English because API
clients are programs and their developers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import StorageError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


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
        logger.error("API request failed: %s", error)
        raise ApiError(503, "database_unavailable", str(error)) from error


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_parameter", _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else f"http_{error.status_code}"
        return error_response(error.status_code, code, str(error.detail))


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        # "loc" is ("query", "kind") for a parameter, ("query", "kind", 1) for a repeated one.
        location = [str(part) for part in item.get("loc", ())]
        where = " ".join(location[:1]) + (
            f" parameter '{location[1]}'" if len(location) > 1 else ""
        )
        value = item.get("input")
        shown = f" value {value!r}" if value is not None else ""
        parts.append(f"{where.strip()}{shown}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
