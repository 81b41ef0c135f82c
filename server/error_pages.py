"""HTML error pages for 404, 405 and invalid parameters outside the API, and HEAD for GET routes.

Paths under ``/api`` and ``/healthz`` keep the JSON error body of ``server.api_errors``, because
their clients are programs. A browser that opens a mistyped dashboard address gets a page in its
language instead, and a parameter that ``server.api_input`` rejects gets a 400 page naming it.
A database failure that no route handled itself gets 503 ``database_unavailable``, as JSON or as
a page. Neither names the database, because the caller may be anyone.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kooperant.i18n import Language
from server.api_errors import DATABASE_UNAVAILABLE_MESSAGE, error_response, http_error_response
from server.api_input import MAX_PARAMETER_VALUES, InvalidParameterError
from server.auth import Authenticator
from server.errors import StorageError
from server.messages import MESSAGES
from server.pages import (
    message_page,
    render_page,
    render_page_without_account,
    request_language,
)
from server.search_params import FIELD_LABELS

logger = logging.getLogger(__name__)

_JSON_PREFIXES = ("/api/", "/healthz", "/metrics")
# Message ids of the heading and text of each status that gets an HTML page.
_PAGE_MESSAGES = {
    404: ("not_found_title", "not_found_text"),
    405: ("method_not_allowed_title", "method_not_allowed_text"),
}
# Characters of a rejected value shown on its error page; the rest is cut with an ellipsis.
_SHOWN_VALUE_CHARS = 100


def add_error_pages(app: FastAPI, authenticator: Authenticator) -> None:
    """Render 404 and 405 outside the API as an HTML page, replacing the JSON-only handler."""

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> Response:
        messages = _PAGE_MESSAGES.get(error.status_code)
        if messages is None or _wants_json(request.url.path):
            return http_error_response(error)

        language = request_language(request)
        heading, text = messages
        response = render_page(
            request,
            authenticator,
            "message.html",
            "",
            status_code=error.status_code,
            heading=MESSAGES(heading, language),
            message=MESSAGES(text, language),
        )
        if error.headers:
            response.headers.update(error.headers)
        return response

    @app.exception_handler(InvalidParameterError)
    async def on_invalid_parameter(request: Request, error: InvalidParameterError) -> Response:
        if _wants_json(request.url.path):
            return error_response(error.status, error.code, error.message, error.headers)

        language = request_language(request)
        heading = MESSAGES("page_invalid_title", language)
        return message_page(
            request, authenticator, 400, heading, _invalid_parameter_text(error, language)
        )

    @app.exception_handler(StorageError)
    async def on_storage_error(request: Request, error: StorageError) -> Response:
        # The reason is logged where it was first seen (server.auth, server.api_errors) and is
        # repeated here only at DEBUG, so that a lost database is not one WARNING per request.
        logger.debug("Request to %s failed in the database: %s", request.url.path, error)
        if _wants_json(request.url.path):
            return error_response(503, "database_unavailable", DATABASE_UNAVAILABLE_MESSAGE)

        language = request_language(request)
        return render_page_without_account(
            request,
            "message.html",
            status_code=503,
            heading=MESSAGES("page_database_unavailable_title", language),
            message=MESSAGES("page_database_unavailable_text", language),
        )

    app.add_middleware(HeadAsGetMiddleware)


def _invalid_parameter_text(error: InvalidParameterError, language: Language) -> str:
    label = FIELD_LABELS.get(error.name) if error.location == "query" else None
    name = MESSAGES(label, language) if label is not None else error.name
    if error.count is not None:
        return MESSAGES(
            "parameter_repeated_too_often",
            language,
            name=name,
            count=error.count,
            max=MAX_PARAMETER_VALUES,
        )
    value = _shown_value(error.value)
    return MESSAGES("parameter_contains_nul", language, name=name, value=value)


def _shown_value(value: str) -> str:
    """Return ``value`` with control characters as escapes such as ``\\x00``, cut if long."""
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in value[:_SHOWN_VALUE_CHARS]
    )
    return shown + "…" if len(value) > _SHOWN_VALUE_CHARS else shown


def _wants_json(path: str) -> bool:
    return path == "/api" or path.startswith(_JSON_PREFIXES)


class HeadAsGetMiddleware:
    """Serve a HEAD request as the GET of the same path, with the headers and without the body.

    FastAPI registers a ``@app.get`` route for GET only, so HEAD would otherwise get 405. Every
    GET route of the server only reads, so running it for HEAD changes nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        body_sent = False

        async def send_without_body(message: Message) -> None:
            # The headers, including Content-Length, pass as the GET response has them. The body
            # becomes one empty message, and later chunks of a streamed body are dropped.
            nonlocal body_sent
            if message["type"] == "http.response.body":
                if body_sent:
                    return
                body_sent = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
