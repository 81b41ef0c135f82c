"""The dashboard's token sign-in and sign-out of a browser; the pages are in ``search_routes``.

With a tokens file, a browser signs in by posting a member's token to ``login``; the response sets
the token as an HttpOnly, SameSite=Strict cookie (Secure over HTTPS) that lasts until the browser
closes. The page then shows that member's view. Without a valid token the page is the sign-in
form with status 401. Without a tokens file the page is open and ``login`` only redirects.
A ``login`` or ``logout`` posted from a page of another origin is rejected with 403, so another
site cannot sign a visitor's browser in with a token of its choice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from kooperant.i18n import LANGUAGES
from server.auth import COOKIE_NAME, Authenticator
from server.dashboard import choose_language, render_sign_in
from server.storage import Storage

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 8 * 1024


def add_dashboard_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    @app.post("/login")
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return _cross_origin_rejected(request)
        form = await _form(request)
        lang = form.get("lang") or None
        target = f"./?lang={lang}" if lang in LANGUAGES else "./"
        if not authenticator.required:
            return RedirectResponse(target, status_code=303)

        token = form.get("token", "").strip()
        viewer = authenticator.viewer_for_token(token) if token else None
        if viewer is None:
            language = choose_language(lang, request.headers.get("accept-language"))
            html = render_sign_in(language, lang_parameter=lang, rejected=True)
            return HTMLResponse(html, status_code=401)

        logger.info("Dashboard sign-in of member %s (cluster %s)", viewer.member, viewer.cluster)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return _cross_origin_rejected(request)
        response = RedirectResponse("./", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response


def _same_origin(request: Request) -> bool:
    """Return whether the form was posted from this server's own pages.

    Browsers send ``Origin`` with every POST; a request without it (curl, older browsers) is
    accepted, because only a browser carries a third site's form to this one.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


def _cross_origin_rejected(request: Request) -> PlainTextResponse:
    logger.warning(
        "Rejected %s posted from origin %s", request.url.path, request.headers.get("origin")
    )
    return PlainTextResponse("cross-origin form rejected", status_code=403)


async def _form(request: Request) -> dict[str, str]:
    """Return the first value of each field of a URL-encoded form body.

    A body over 8 KiB or with more than 10 fields counts as an empty form, so the response is the
    sign-in form again.
    """
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    except ValueError:
        return {}
    return {name: values[0] for name, values in fields.items()}
