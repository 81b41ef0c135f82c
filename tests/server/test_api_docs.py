"""The API docs page and its Swagger UI files, served by the server itself."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi import FastAPI

from server.api_docs import add_api_docs, policy_allowing_inline_scripts
from server.security_headers import CONTENT_SECURITY_POLICY
from server.storage import Storage
from tests.server.test_api_access import add_users, client_of, fill, make_app

ASSETS = {
    "/api/docs/static/swagger-ui-bundle.js": ("text/javascript", "application/javascript"),
    "/api/docs/static/swagger-ui.css": ("text/css",),
    "/api/docs/static/favicon.png": ("image/png",),
}


def sha256_source(script: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"


async def test_docs_page_local_urls_only(storage: Storage) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get("/api/docs")

    urls = re.findall(r"""(?:src|href)="([^"]*)"|url: '([^']*)'""", response.text)
    referenced = sorted(filter(None, (url for pair in urls for url in pair)))
    assert response.status_code == 200
    assert referenced == sorted(["/api/openapi.json", *ASSETS])
    assert "http://" not in response.text
    assert "https://" not in response.text


@pytest.mark.parametrize(("path", "content_types"), sorted(ASSETS.items()))
async def test_docs_asset_served(storage: Storage, path: str, content_types: tuple[str]) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in content_types
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.content) > 0


async def test_docs_asset_missing_404(storage: Storage) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get("/api/docs/static/no-such-file.js")

    assert response.status_code == 404


async def test_docs_policy_allows_inline_script_only(storage: Storage) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get("/api/docs")

    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    policy = response.headers["content-security-policy"]
    assert len(scripts) == 1
    assert "SwaggerUIBundle(" in scripts[0]
    assert policy == CONTENT_SECURITY_POLICY.replace(
        "script-src 'self'", f"script-src 'self' {sha256_source(scripts[0])}"
    )
    assert "unsafe-inline" not in policy.split("script-src")[1]
    assert response.headers["x-frame-options"] == "DENY"


def test_policy_without_inline_script_unchanged() -> None:
    html = '<script src="/a.js"></script><p>no inline script</p>'

    assert policy_allowing_inline_scripts(html) == CONTENT_SECURITY_POLICY


def test_policy_hashes_each_inline_script() -> None:
    html = '<script src="/a.js"></script><script>one()</script><script type="module">two()</script>'

    policy = policy_allowing_inline_scripts(html)

    assert f"script-src 'self' {sha256_source('one()')} {sha256_source('two()')};" in policy


async def test_docs_open_on_server_with_accounts(storage: Storage) -> None:
    fill(storage)
    add_users(storage)

    async with client_of(make_app(storage)) as client:
        page = await client.get("/api/docs")
        asset = await client.get("/api/docs/static/swagger-ui.css")
        api = await client.get("/api/v1/resources")

    assert page.status_code == 200
    assert asset.status_code == 200
    # The API itself still needs a token or a session there.
    assert api.status_code == 401


def test_add_api_docs_without_openapi_rejected() -> None:
    app = FastAPI(openapi_url=None, docs_url=None)

    with pytest.raises(ValueError, match="openapi_url is None"):
        add_api_docs(app)


def test_add_api_docs_beside_fastapi_docs_rejected() -> None:
    app = FastAPI(docs_url="/api/docs")

    with pytest.raises(ValueError, match="own docs page at '/api/docs'; create the app with"):
        add_api_docs(app)
