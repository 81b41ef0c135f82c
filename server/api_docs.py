"""The interactive API docs page (``/api/docs``), served without any other host.

FastAPI's own docs page loads Swagger UI from a CDN, so the page stays blank on a server without
internet access, and every visit sends requests to a third party. This page loads the Swagger UI
files that the ``fastapi-offline`` package ships, from ``/api/docs/static/``. Like the OpenAPI
document, the page and its files need no token or session.

``get_swagger_ui_html`` starts Swagger UI with an inline script. Instead of allowing
``'unsafe-inline'``, the page's Content-Security-Policy allows that exact script by its SHA-256
hash, computed from the HTML that is sent.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from server.security_headers import CONTENT_SECURITY_POLICY

DOCS_PATH = "/api/docs"
STATIC_PATH = f"{DOCS_PATH}/static"
# Files in the "static" folder of fastapi-offline: the swagger-ui-dist files (5.32.6 in
# fastapi-offline 1.7.7) that FastAPI's own docs page loads from a CDN.
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
FAVICON = "favicon.png"
# null turns off Swagger UI's online validator, whose default address is on validator.swagger.io.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.DOTALL)


def add_api_docs(app: FastAPI) -> None:
    """Add the docs page and its static files to ``app``, which must have ``docs_url=None``.

    Raises ``ModuleNotFoundError`` when fastapi-offline is not installed and ``RuntimeError``
    when the installed version has no ``static`` folder.
    """
    if app.openapi_url is None:
        raise ValueError("the API docs page needs the OpenAPI document, but openapi_url is None")
    if app.docs_url is not None:
        raise ValueError(
            f"FastAPI already serves its own docs page at {app.docs_url!r}; "
            "create the app with docs_url=None"
        )
    openapi_url = app.openapi_url
    title = f"{app.title} - Swagger UI"

    app.mount(
        STATIC_PATH,
        StaticFiles(directory=str(resources.files("fastapi_offline") / "static")),
        name="api-docs-static",
    )

    @app.get(DOCS_PATH, include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        # Behind a reverse proxy that serves the app under a prefix, every URL needs the prefix.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=title,
            swagger_js_url=f"{root}{STATIC_PATH}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{STATIC_PATH}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{STATIC_PATH}/{FAVICON}",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        page.headers["content-security-policy"] = policy_allowing_inline_scripts(
            bytes(page.body).decode()
        )
        return page


def policy_allowing_inline_scripts(html: str) -> str:
    """Return the server's Content-Security-Policy with the inline scripts of ``html`` allowed.

    Each inline script is allowed by the SHA-256 hash of its exact text, so a script injected into
    the page, or a changed one, still does not run.
    """
    hashes = [f"'sha256-{_sha256_base64(script)}'" for script in _INLINE_SCRIPT.findall(html)]
    if not hashes:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace(
        "script-src 'self'", "script-src 'self' " + " ".join(hashes), 1
    )


def _sha256_base64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
