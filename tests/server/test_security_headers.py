"""Security headers of pages and API responses, through the real application and httpx."""

from __future__ import annotations

import httpx

from server.security_headers import CONTENT_SECURITY_POLICY
from server.storage import Storage
from tests.server.test_api_access import add_users, client_of, fill, make_app, signed_in


def assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.request.url
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_open_pages_headers_without_no_store(storage: Storage) -> None:
    fill(storage)

    async with client_of(make_app(storage)) as client:
        page = await client.get("/")
        api = await client.get("/api/v1/resources")

    assert page.status_code == 200
    assert_page_headers(page)
    assert "no-store" not in page.headers.get("cache-control", "")
    assert api.status_code == 200
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers
    assert "no-store" not in api.headers.get("cache-control", "")


async def test_signed_in_responses_no_store(storage: Storage) -> None:
    fill(storage)
    add_users(storage)
    app = make_app(storage)

    async with signed_in(app, "coord") as client:
        responses = [
            await client.get(path)
            for path in ("/", "/coordinator/members", "/offers/c1/acme/public-cnc")
        ]
        api = await client.get("/api/v1/resources")
        csv = await client.get("/api/v1/resources.csv")

    for response in responses:
        assert response.status_code == 200, response.request.url
        assert_page_headers(response)
        assert response.headers["cache-control"] == "no-store"
    assert api.headers["cache-control"] == "no-store"
    assert csv.headers["cache-control"] == "no-store"


async def test_bearer_request_no_store(storage: Storage) -> None:
    fill(storage)
    add_users(storage)

    async with client_of(make_app(storage)) as client:
        response = await client.get("/api/v1/resources", headers={"Authorization": "Bearer x"})

    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"


async def test_sign_in_page_headers(storage: Storage) -> None:
    fill(storage)
    add_users(storage)

    async with client_of(make_app(storage)) as client:
        response = await client.get("/login")

    assert_page_headers(response)


async def test_api_docs_framing_denied(storage: Storage) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get("/api/docs")

    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    # The page's own policy, which allows its inline script by hash, is kept.
    assert response.headers["content-security-policy"] != CONTENT_SECURITY_POLICY
    assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
