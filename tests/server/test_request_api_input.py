"""Invalid bodies of the request API: error locations, no echoed input, and the size limit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.request_api import MAX_BODY_BYTES
from tests.server.test_requests_api import api, auth, machine_body

__all__ = ["api"]

REQUEST_ID = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"


async def post_body(api: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await api.post("/api/v1/requests", json=body, headers=auth("beta"))


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_missing_fields_not_echo_body(api: httpx.AsyncClient) -> None:
    response = await post_body(api, {"message": "ABCDEFGHIJ"})

    error = response.json()["error"]
    assert response.status_code == 422
    assert "ABCDEFGHIJ" not in response.text
    assert [item["parameter"] for item in error["details"]] == [
        "cluster",
        "member",
        "resource",
        "contact",
    ]
    assert error["details"][0]["message"] == "body parameter 'cluster': Field required"


async def test_long_invalid_value_shown_cut(api: httpx.AsyncClient) -> None:
    name = "N" * 5000
    body = machine_body(contact={"name": name, "email": "anna@beta.example"})

    response = await post_body(api, body)

    message = response.json()["error"]["message"]
    assert response.status_code == 422
    assert "body parameter 'contact.name' value 'NNNN" in message
    assert "N" * 41 not in message
    assert "(5000 characters)" in message
    assert len(response.content) < 1000


@pytest.mark.parametrize(
    ("body", "parameter", "shown"),
    [
        (machine_body(contact={"name": 5, "email": "a@beta.example"}), "contact.name", "5"),
        (
            machine_body(
                slot=None,
                resource="hall-b",
                amount={"quantity": "pallet_places", "value": "x", "unit": "pallets"},
            ),
            "amount.value",
            "'x'",
        ),
        (machine_body(slot={"start": "2026-12-07T08:00:00Z"}), "slot.end", None),
        (machine_body(contact={"name": "Anna", "fax": "1"}), "contact.fax", "'1'"),
    ],
)
async def test_nested_field_named_by_path(
    api: httpx.AsyncClient, body: dict[str, Any], parameter: str, shown: str | None
) -> None:
    response = await post_body(api, body)

    error = response.json()["error"]
    assert response.status_code == 422
    assert [item["parameter"] for item in error["details"]] == [parameter]
    assert error["details"][0]["location"] == "body"
    prefix = f"body parameter '{parameter}'"
    assert error["message"].startswith(prefix if shown is None else f"{prefix} value {shown}:")


async def test_body_not_json_named(api: httpx.AsyncClient) -> None:
    headers = {**auth("beta"), "Content-Type": "application/json"}

    response = await api.post("/api/v1/requests", content=b'{"cluster": ', headers=headers)

    error = response.json()["error"]
    assert response.status_code == 422
    assert error["message"].startswith("the body is not valid JSON")
    assert error["details"][0]["parameter"] == ""
    assert "'0'" not in error["message"]


async def test_slot_end_before_start_named(api: httpx.AsyncClient) -> None:
    slot = {"start": "2026-12-07T09:00:00+01:00", "end": "2026-12-07T08:00:00+01:00"}

    response = await post_body(api, machine_body(slot=slot))

    error = response.json()["error"]
    assert response.status_code == 422
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("invalid request at slot.end: ")
    assert "slot.start" in error["message"]


async def test_invalid_email_named_by_dotted_path(api: httpx.AsyncClient) -> None:
    body = machine_body(contact={"name": "Anna", "email": "no-at-sign"})

    response = await post_body(api, body)

    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"].startswith("invalid request at contact.email: ")


async def test_nul_named_by_dotted_path(api: httpx.AsyncClient) -> None:
    body = machine_body(contact={"name": "An\x00na", "email": "anna@beta.example"})

    response = await post_body(api, body)

    assert response.json()["error"] == {
        "code": "invalid_parameter",
        "message": "body parameter 'contact.name' contains a NUL character",
    }


async def test_body_over_limit_is_413(api: httpx.AsyncClient) -> None:
    body = machine_body(message="x" * (20 * 1024 * 1024))

    response = await post_body(api, body)
    listed = await api.get("/api/v1/requests", headers=auth("beta"))

    error = response.json()["error"]
    assert response.status_code == 413
    assert error["code"] == "body_too_large"
    assert f"over the limit of {MAX_BODY_BYTES} bytes" in error["message"]
    assert len(response.content) < 1000
    assert listed.json()["total"] == 0


async def test_chunked_body_over_limit_is_413(api: httpx.AsyncClient) -> None:
    data = json.dumps(machine_body(message="x" * (MAX_BODY_BYTES + 1))).encode()
    headers = {**auth("beta"), "Content-Type": "application/json"}

    response = await api.post("/api/v1/requests", content=chunks(data, 4096), headers=headers)
    listed = await api.get("/api/v1/requests", headers=auth("beta"))

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert f"over the limit of {MAX_BODY_BYTES} bytes" in response.json()["error"]["message"]
    assert listed.json()["total"] == 0


async def test_chunked_body_at_limit_accepted(api: httpx.AsyncClient) -> None:
    data = json.dumps(machine_body()).encode()
    padded = data + b" " * (MAX_BODY_BYTES - len(data))
    headers = {**auth("beta"), "Content-Type": "application/json"}

    response = await api.post("/api/v1/requests", content=chunks(padded, 4096), headers=headers)

    assert len(padded) == MAX_BODY_BYTES
    assert response.status_code == 201, response.text


async def test_withdraw_body_over_limit_is_413(api: httpx.AsyncClient) -> None:
    path = f"/api/v1/requests/{REQUEST_ID}/withdraw"

    response = await api.post(path, content=b"x" * (MAX_BODY_BYTES + 1), headers=auth("beta"))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            machine_body(contact={"name": "Anna\nNowak", "email": "anna@beta.example"}),
            "invalid request at contact.name: character U+000A at position 5",
        ),
        (
            machine_body(contact={"name": "Anna", "email": "anna@beta.example\u202e"}),
            "invalid request at contact.email: character U+202E at position 18",
        ),
        (
            machine_body(message="Dzień dobry\x1b[2J"),
            "invalid request at message: character U+001B at position 12",
        ),
        (
            machine_body(message="zwykły\rtekst"),
            "invalid request at message: character U+000D at position 7",
        ),
    ],
)
async def test_control_character_rejected(
    api: httpx.AsyncClient, body: dict[str, Any], expected: str
) -> None:
    response = await post_body(api, body)
    listed = await api.get("/api/v1/requests", headers=auth("beta"))

    error = response.json()["error"]
    assert response.status_code == 422
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(expected)
    assert listed.json()["total"] == 0


async def test_message_lines_kept_as_line_feeds(api: httpx.AsyncClient) -> None:
    body = machine_body(message="Dzień dobry,\r\n\tdetale:\n- 40 sztuk")

    response = await post_body(api, body)

    assert response.status_code == 201, response.text
    assert response.json()["message"] == "Dzień dobry,\n\tdetale:\n- 40 sztuk"


async def test_body_not_utf8_is_400(api: httpx.AsyncClient) -> None:
    headers = {**auth("beta"), "Content-Type": "application/json"}

    response = await api.post("/api/v1/requests", content=b'{"a": "\xff"}', headers=headers)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
