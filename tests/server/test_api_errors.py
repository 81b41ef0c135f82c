"""Error bodies of the API: validation details, unknown paths, methods and unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from server.api import create_app
from server.api_errors import INTERNAL_ERROR_MESSAGE
from server.status import ServerStatus
from server.storage import Storage


@pytest.fixture
def app(sqlite_storage: Storage) -> FastAPI:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    return create_app(sqlite_storage, status)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        yield client


async def test_validation_error_lists_parameters(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/members", params={"limit": "0", "offset": "-1"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert "query parameter 'limit' value '0'" in error["message"]
    assert "query parameter 'offset' value '-1'" in error["message"]
    assert [(item["location"], item["parameter"]) for item in error["details"]] == [
        ("query", "limit"),
        ("query", "offset"),
    ]
    assert "greater than or equal to 1" in error["details"][0]["message"]


async def test_validation_error_of_repeated_value(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/resources", params={"kind": ["machine", "robot"]})

    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [(item["location"], item["parameter"]) for item in details] == [("query", "kind")]
    assert "'robot'" in details[0]["message"]


async def test_api_error_has_no_details(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/resources", params={"from": "tomorrow"})

    assert response.status_code == 422
    assert "details" not in response.json()["error"]


async def test_unknown_api_path_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/no-such-list")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}


async def test_wrong_method_is_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/v1/resources")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


async def test_unexpected_exception_is_500(
    app: FastAPI, api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def fail() -> None:
        raise RuntimeError("secret internals /var/lib/kooperant")

    app.add_api_route("/api/v1/failing", fail)

    with caplog.at_level(logging.ERROR, logger="server.api_errors"):
        response = await api.get("/api/v1/failing")

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": INTERNAL_ERROR_MESSAGE}
    }
    assert "secret internals" not in response.text
    record = next(item for item in caplog.records if item.name == "server.api_errors")
    assert record.getMessage() == "Unexpected error in GET /api/v1/failing"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_openapi_document_is_served(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/openapi.json")).json()
    docs = await api.get("/api/docs")

    assert docs.status_code == 200
    assert "/api/openapi.json" in docs.text
    operation = document["paths"]["/api/v1/members"]["get"]
    assert operation["tags"] == ["members"]
    assert operation["security"] == [{"HTTPBearer": []}]
    for status in ("401", "422", "500", "503"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_openapi_describes_shared_parameters(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/openapi.json")).json()

    parameters = document["paths"]["/api/v1/resources"]["get"]["parameters"]
    undescribed = [item["name"] for item in parameters if not item.get("description")]
    assert undescribed == []


@pytest.mark.parametrize(
    ("url", "name", "value"),
    [
        ("/api/v1/resources", "member", "\x00"),
        ("/api/v1/resources", "capability", "milling\x00"),
        ("/api/v1/members", "limit", "1\x00"),
    ],
)
async def test_nul_in_parameter_is_422(storage: Storage, url: str, name: str, value: str) -> None:
    # PostgreSQL rejects NUL in text, which made such a request fail with 503 before.
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as api:
        response = await api.get(url, params={name: value})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert f"query parameter {name!r} value {value!r} contains a NUL character" in error["message"]


async def test_parameter_repeated_too_often(storage: Storage) -> None:
    # Over 1000 capability conditions exceeded SQLite's expression depth and gave 503 before.
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as api:
        at_limit = await api.get(
            "/api/v1/resources", params={"capability": [f"c{index}" for index in range(100)]}
        )
        over_limit = await api.get(
            "/api/v1/resources", params={"capability": [f"c{index}" for index in range(1001)]}
        )

    assert at_limit.status_code == 200, at_limit.text
    assert over_limit.status_code == 422, over_limit.text
    error = over_limit.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"] == (
        "query parameter 'capability' is given 1001 times; give it at most 100 times"
    )
