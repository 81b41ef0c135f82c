"""The checks of a dashboard POST that needs a session: sign-in, Origin, form size, CSRF token.

They match the account forms of ``server.account_routes``. A foreign ``Origin`` gets the 403
page, and a body over ``MAX_FORM_BYTES`` (or a larger limit the caller sets) gets the 413 page.
The ``csrf_token`` field must be the token of the browser's session, else the 403 page is
returned. Only a session has a CSRF token, so a caller without one is sent to sign in.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.auth import Authenticator
from server.forms import MAX_FORM_BYTES, PostedForm, read_form, same_origin
from server.pages import render_page
from server.storage.accounts import SessionRecord

logger = logging.getLogger(__name__)


async def post_session(
    request: Request, authenticator: Authenticator, come_back_to: str
) -> SessionRecord | Response:
    """Return the session of a POST, or the redirect to sign in that returns to a page."""
    session = await asyncio.to_thread(authenticator.session, request)
    if session is None or session.user.must_change_password:
        return RedirectResponse(f"/login?next={quote(come_back_to, safe='')}", status_code=303)
    return session


async def checked_form(
    request: Request,
    authenticator: Authenticator,
    session: SessionRecord,
    *,
    max_bytes: int = MAX_FORM_BYTES,
) -> PostedForm | Response:
    """Return the posted form, or the 403 or 413 page described in this module's docstring."""
    if not same_origin(request):
        return _account_message(request, authenticator, "form_rejected", 403)
    form = await read_form(request, max_bytes=max_bytes)
    if form.too_large:
        logger.warning(
            "Form %s of user %s is over %d bytes",
            request.url.path,
            session.user.username,
            max_bytes,
        )
        return _account_message(request, authenticator, "form_too_large_generic", 413)
    if not authenticator.check_csrf(request, form.get("csrf_token")):
        logger.warning(
            "Rejected %s of user %s: missing or wrong CSRF token",
            request.url.path,
            session.user.username,
        )
        return _account_message(request, authenticator, "form_rejected", 403)
    return form


def _account_message(
    request: Request, authenticator: Authenticator, message: str, status_code: int
) -> HTMLResponse:
    return render_page(
        request,
        authenticator,
        "account_message.html",
        "",
        status_code=status_code,
        message=message,
        fields={},
    )
