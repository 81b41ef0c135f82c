"""Rendering of the sign-in and account pages, and the redirects between them."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, Template, select_autoescape

from kooperant.i18n import Language
from server.dashboard import choose_language
from server.page_context import PageAccount, page_context


def request_language(request: Request) -> Language:
    """Return the page language from ``?lang=`` or ``Accept-Language``."""
    return choose_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def safe_next(target: str | None) -> str:
    """Return ``target`` when it is a path on this server, else ``/``.

    Only a path starting with a single ``/`` is kept: ``//host``, ``/\\host`` and absolute URLs
    would send the browser to another site after sign-in.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(character in target for character in "\r\n\t\\"):
        return "/"
    return target


def sign_in_redirect(request: Request) -> RedirectResponse:
    """Return a 303 to the sign-in page that comes back to this page and query afterwards."""
    current_path = request.url.path
    if request.url.query:
        current_path += f"?{request.url.query}"
    return RedirectResponse(f"/login?{urlencode({'next': current_path})}", status_code=303)


def render_page(
    request: Request,
    template: str,
    *,
    account: PageAccount | None,
    active: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **variables: Any,
) -> HTMLResponse:
    """Render ``template`` (which extends ``base.html``) in the request's language."""
    language = request_language(request)
    context = page_context(request, language, account, active)
    html = _template(template).render(**context, **variables)
    return HTMLResponse(html, status_code=status_code, headers=headers)


@cache
def _template(name: str) -> Template:
    environment = Environment(
        loader=PackageLoader("server", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(name)
