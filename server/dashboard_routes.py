"""The dashboard's page routes.

A caller that must sign in first (see ``server.auth``) is redirected to the sign-in page, which
returns to the page afterwards. Sign-in, sign-out and accounts are in ``server.account_routes``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from server.account_pages import sign_in_redirect
from server.api_errors import read
from server.auth import Authenticator
from server.dashboard import render_dashboard
from server.storage import ResourceQuery, Storage

logger = logging.getLogger(__name__)

# TODO: page the dashboard; a cluster with more resources shows only the first 1000.
DASHBOARD_MAX_RESOURCES = 1000


def add_dashboard_routes(
    app: FastAPI,
    storage: Storage,
    authenticator: Authenticator,
    clock: Callable[[], datetime],
) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request, lang: str | None = None) -> Response:
        viewer = authenticator.dashboard_viewer(request)
        if viewer is None:
            return sign_in_redirect(request)

        now = clock()
        query = ResourceQuery(limit=DASHBOARD_MAX_RESOURCES)
        page = await read(storage.list_resources, query, viewer=viewer, now=now)
        members = await read(storage.list_members, viewer=viewer, now=now)
        html = render_dashboard(
            page.items,
            members,
            lang_parameter=lang,
            accept_language=request.headers.get("accept-language"),
            now=now,
            signed_in=viewer if authenticator.required else None,
        )
        return HTMLResponse(html)
