"""Rendering of the dashboard's pages: the template environment, language and sign-in gate."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from kooperant.i18n import Language
from server.auth import Authenticator
from server.dashboard import choose_language
from server.page_context import PageAccount, page_context
from server.storage import Viewer


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("server", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def request_language(request: Request) -> Language:
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def render_page(
    request: Request,
    authenticator: Authenticator,
    template: str,
    active: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Return ``template`` rendered with the layout's variables and ``context``."""
    account = authenticator.page_account(request)
    return _render(request, account, template, active, status_code, context)


def render_page_without_account(
    request: Request, template: str, *, status_code: int, **context: Any
) -> HTMLResponse:
    """Return ``template`` rendered as for a caller who is not signed in.

    For error pages that must not read the session, such as while the database is unavailable.
    """
    return _render(request, None, template, "", status_code, context)


def _render(
    request: Request,
    account: PageAccount | None,
    template: str,
    active: str,
    status_code: int,
    context: dict[str, Any],
) -> HTMLResponse:
    language = request_language(request)
    html = (
        _environment()
        .get_template(template)
        .render(**page_context(request, language, account, active), **context)
    )
    return HTMLResponse(html, status_code=status_code)


def sign_in_redirect(request: Request) -> RedirectResponse:
    """Return the 303 to the sign-in page that comes back to this page's path and query."""
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def page_viewer(request: Request, authenticator: Authenticator) -> Viewer | RedirectResponse:
    """Return the viewer of a page, or the redirect to sign in when there is none."""
    viewer = authenticator.dashboard_viewer(request)
    if viewer is None:
        return sign_in_redirect(request)
    return viewer


def valid_ids(*values: str) -> bool:
    """Return whether path ids can name a stored row (PostgreSQL text cannot hold NUL)."""
    return all("\x00" not in value for value in values)


def message_page(
    request: Request, authenticator: Authenticator, status_code: int, heading: str, message: str
) -> HTMLResponse:
    """Return the page that shows one message under ``heading``, such as an error."""
    return render_page(
        request,
        authenticator,
        "message.html",
        "",
        status_code=status_code,
        heading=heading,
        message=message,
    )
