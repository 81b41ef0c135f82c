"""The Origin check of dashboard forms: host and port must equal those of the request."""

from __future__ import annotations

import pytest
from fastapi import Request

from server.forms import same_origin
from server.storage import Storage
from tests.server.test_api_access import (
    BASE_URL,
    PASSWORDS,
    add_users,
    client_of,
    fill,
    make_app,
)


def request_to(url: str, origin: str | None) -> Request:
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "server": ("127.0.0.1", 8080),
        "path": f"/{path}",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080/login", "http://127.0.0.1:8080"),
        ("http://Kooperant.Example/login", "http://kooperant.example:80"),
        ("https://kooperant.example/login", "https://KOOPERANT.example"),
        # A proxy that ends TLS forwards the browser's https form over http with the same Host.
        ("http://kooperant.example/login", "https://kooperant.example"),
        ("http://127.0.0.1:8080/login", None),
    ],
)
def test_same_origin_accepted(url: str, origin: str | None) -> None:
    assert same_origin(request_to(url, origin))


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080/login", "http://127.0.0.1:8081"),
        ("http://kooperant.example/login", "http://kooperant.example:8080"),
        ("http://kooperant.example/login", "https://evil.example"),
        ("http://127.0.0.1:8080/login", "http://127.0.0.1"),
        ("http://127.0.0.1:8080/login", "http://localhost:8080"),
        ("http://127.0.0.1:8080/login", "null"),
        ("http://127.0.0.1:8080/login", "ftp://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/login", "http://127.0.0.1:99999"),
        ("http://127.0.0.1:8080/login", ""),
    ],
)
def test_other_origin_rejected(url: str, origin: str) -> None:
    assert not same_origin(request_to(url, origin))


async def test_login_behind_tls_proxy_accepted(storage: Storage) -> None:
    fill(storage)
    add_users(storage)

    async with client_of(make_app(storage)) as client:
        behind_proxy = await client.post(
            "/login",
            data={"username": "coord", "password": PASSWORDS["coord"]},
            headers={"Origin": BASE_URL.replace("http://", "https://")},
        )
        other_host = await client.post(
            "/login",
            data={"username": "coord", "password": PASSWORDS["coord"]},
            headers={"Origin": BASE_URL + "1"},
        )

    assert behind_proxy.status_code == 303
    assert other_host.status_code == 403
