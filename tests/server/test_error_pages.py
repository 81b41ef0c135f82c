"""404 and 405 pages outside the API, JSON errors inside it, and HEAD for GET routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kooperant.net import free_tcp_port
from server.service import ServerSettings
from server.storage import Storage
from tests.server.test_api_access import client_of, fill, make_app
from tests.server.test_service import running_server


@pytest.mark.parametrize(("language", "heading"), [("pl", "Nie znaleziono"), ("en", "Not found")])
async def test_unknown_page_html_404(storage: Storage, language: str, heading: str) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get("/nonexistent", params={"lang": language})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in response.text
    assert f'<html lang="{language}">' in response.text


async def test_wrong_method_page_html_405(storage: Storage) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.post("/", headers={"Accept-Language": "en"})

    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Method not allowed</h1>" in response.text
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nonexistent", 404, "not_found"),
        ("GET", "/api/nonexistent", 404, "not_found"),
        ("POST", "/api/v1/resources", 405, "method_not_allowed"),
        ("POST", "/healthz", 405, "method_not_allowed"),
    ],
)
async def test_api_errors_stay_json(
    storage: Storage, method: str, path: str, status: int, code: str
) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.request(method, path)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("path", ["/", "/members", "/api/v1/resources", "/healthz"])
async def test_head_matches_get(storage: Storage, path: str) -> None:
    fill(storage)

    async with client_of(make_app(storage)) as client:
        head = await client.head(path)
        get = await client.get(path)

    assert head.status_code == get.status_code
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))
    assert head.content == b""


async def test_head_on_real_server(tmp_path: Path, free_port: int) -> None:
    settings = ServerSettings(
        database=f"sqlite:///{tmp_path / 'k.db'}",
        http_port=free_port,
        embedded_broker_port=free_tcp_port(),
    )

    async with running_server(settings) as client:
        head = await client.head("/")
        get = await client.get("/")

    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/html")
    assert head.headers["content-length"] == str(len(get.content))
    assert head.content == b""


@pytest.mark.parametrize(
    ("path", "params", "language", "text"),
    [
        ("/", {"city": "\x00"}, "pl", "Wartość „\\x00” parametru „Miejscowość” zawiera znak NUL"),
        ("/", {"city": "\x00"}, "en", "The value &#39;\\x00&#39; of the parameter &#39;City&#39;"),
        ("/", {"quantity": "5\x00"}, "pl", "Wartość „5\\x00” parametru „Wielkość”"),
        (
            "/export/search.csv",
            {"city": "\x00"},
            "en",
            "The value &#39;\\x00&#39; of the parameter &#39;City&#39; contains a NUL character",
        ),
        ("/members/%00/x", {}, "pl", "Wartość „\\x00” parametru „cluster” zawiera znak NUL"),
        ("/members/%00/x", {}, "en", "&#39;\\x00&#39; of the parameter &#39;cluster&#39;"),
    ],
)
async def test_nul_parameter_page_html_400(
    storage: Storage, path: str, params: dict[str, str], language: str, text: str
) -> None:
    async with client_of(make_app(storage)) as client:
        response = await client.get(path, params={**params, "lang": language})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert f'<html lang="{language}">' in response.text
    assert text in response.text


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("pl", "Parametr „kind” występuje w adresie 101 razy; podaj go najwyżej 100 razy."),
        ("en", "The parameter &#39;kind&#39; is given 101 times in the address"),
    ],
)
async def test_too_many_values_page_html_400(storage: Storage, language: str, text: str) -> None:
    params = [("kind", "machine")] * 101 + [("lang", language)]
    async with client_of(make_app(storage)) as client:
        response = await client.get("/", params=params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text
