"""The request routes of the API: create, list, read and withdraw, with their error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from kooperant.protocol.answer import Answer, AnswerState
from kooperant.protocol.envelope import Envelope
from server.api import create_app
from server.passwords import hash_password
from server.status import ServerStatus
from server.storage import Storage
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, hours, machine_offer, storage_offer

CLUSTER = "pomorskie-metal"
STATUS = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
NOW = T0 - hours(1)
COORDINATOR_PASSWORD = "coordinator password 1"


def auth(member: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{member}"}


def machine_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cluster": CLUSTER,
        "member": "acme",
        "resource": "cnc-5ax-01",
        "slot": {"start": "2026-12-07T08:00:00+01:00", "end": "2026-12-07T09:00:00+01:00"},
        "message": "Frezowanie 40 detali",
        "contact": {"name": "Anna Nowak", "email": "anna@beta.example"},
    }
    body.update(changes)
    return body


def amount_body(value: float, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "resource": "hall-b",
        "slot": None,
        "amount": {"quantity": "pallet_places", "value": value, "unit": "pallets"},
    }
    return machine_body(**{**fields, **changes})


def client_for(storage: Storage, tokens: TokenStore | None) -> httpx.AsyncClient:
    app = create_app(storage, STATUS, tokens=tokens, clock=lambda: NOW)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kooperant")


def tokens_file(tmp_path: Path) -> TokenStore:
    path = tmp_path / "tokens.yaml"
    lines = [
        f"- {{cluster: {CLUSTER}, member: {name}, token_sha256: {hash_token(f'token-{name}')}}}\n"
        for name in ("acme", "beta", "gamma")
    ]
    path.write_text("".join(lines))
    return TokenStore.load(path)


@pytest.fixture
async def api(storage: Storage, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API with acme's machine (for the whole cluster) and storage hall (for gamma only)."""
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    storage.store_offer(replace(storage_offer(accepts_requests=True), audience=("gamma",)), NOW)
    async with client_for(storage, tokens_file(tmp_path)) as client:
        yield client


async def test_create_request_returns_stored_request(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/requests", json=machine_body(), headers=auth("beta"))

    assert response.status_code == 201, response.text
    data = response.json()
    assert data["requester"] == "beta"
    assert data["member"] == "acme"
    assert data["state"] == "sent"
    assert data["created_at"] == "2026-12-07T05:00:00+00:00"
    assert data["expires_at"] == "2026-12-09T05:00:00+00:00"
    assert data["slot"] == {
        "start": "2026-12-07T07:00:00+00:00",
        "end": "2026-12-07T08:00:00+00:00",
    }
    assert data["amount"] is None
    assert data["contact"] == {"name": "Anna Nowak", "email": "anna@beta.example", "phone": None}
    assert [entry["state"] for entry in data["history"]] == ["sent"]


async def test_create_request_expiry_hours(api: httpx.AsyncClient) -> None:
    body = machine_body(expires_in_hours=720)

    response = await api.post("/api/v1/requests", json=body, headers=auth("beta"))
    too_long = await api.post(
        "/api/v1/requests", json=machine_body(expires_in_hours=721), headers=auth("beta")
    )

    assert response.json()["expires_at"] == "2027-01-06T05:00:00+00:00"
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_parameter"


async def test_requests_listed_for_both_sides(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/requests", json=machine_body(), headers=auth("beta"))
    request_id = created.json()["request_id"]

    sent = await api.get("/api/v1/requests", params={"role": "sent"}, headers=auth("beta"))
    received = await api.get("/api/v1/requests", params={"role": "received"}, headers=auth("acme"))
    other = await api.get("/api/v1/requests", params={"role": "received"}, headers=auth("gamma"))

    assert sent.status_code == 200
    assert [item["request_id"] for item in sent.json()["items"]] == [request_id]
    assert sent.json()["total"] == 1
    assert "history" not in sent.json()["items"][0]
    assert [item["request_id"] for item in received.json()["items"]] == [request_id]
    assert other.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_get_request_readers(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/requests", json=machine_body(), headers=auth("beta"))
    path = f"/api/v1/requests/{created.json()['request_id']}"

    by_owner = await api.get(path, headers=auth("acme"))
    by_outsider = await api.get(path, headers=auth("gamma"))
    invalid_id = await api.get("/api/v1/requests/not-a-uuid", headers=auth("acme"))

    assert by_owner.status_code == 200
    assert by_owner.json()["requester"] == "beta"
    assert by_outsider.status_code == 404
    assert by_outsider.json()["error"]["code"] == "request_not_found"
    assert invalid_id.status_code == 422


async def test_create_request_audience_hides_offer(api: httpx.AsyncClient) -> None:
    hidden = await api.post("/api/v1/requests", json=amount_body(1.0), headers=auth("beta"))
    missing = await api.post(
        "/api/v1/requests", json=amount_body(1.0, resource="hall-z"), headers=auth("beta")
    )
    allowed = await api.post("/api/v1/requests", json=amount_body(1.0), headers=auth("gamma"))

    assert hidden.status_code == 404
    assert missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"]
    assert hidden.json()["error"]["code"] == "request_offer_not_found"
    assert "hall-b" in hidden.json()["error"]["message"]
    assert allowed.status_code == 201, allowed.text


@pytest.mark.parametrize(
    ("member", "body", "status", "code", "named"),
    [
        ("acme", machine_body(), 422, "request_own_offer", "cnc-5ax-01"),
        (
            "beta",
            machine_body(
                slot={"start": "2026-12-07T09:00:00+00:00", "end": "2026-12-07T11:00:00+00:00"}
            ),
            422,
            "request_slot_not_free",
            "2026-12-07T09:00:00+00:00",
        ),
        ("gamma", amount_body(41.0), 422, "request_amount_above_free", "41"),
        (
            "gamma",
            amount_body(1.0, amount={"quantity": "disk_free", "value": 1, "unit": "GiB"}),
            422,
            "request_amount_unknown",
            "disk_free",
        ),
        (
            "gamma",
            amount_body(1.0, slot=machine_body()["slot"], amount=None),
            422,
            "request_slot_not_machine",
            "storage",
        ),
        ("beta", machine_body(slot=None), 422, "invalid_request", "neither"),
        (
            "beta",
            machine_body(contact={"name": "Anna"}),
            422,
            "invalid_request",
            "Anna",
        ),
        (
            "beta",
            machine_body(contact={"name": "Anna", "email": "no-at-sign"}),
            422,
            "invalid_request",
            "no-at-sign",
        ),
        (
            "beta",
            machine_body(slot={"start": "2026-12-07T08:00:00", "end": "2026-12-07T09:00:00Z"}),
            422,
            "invalid_request",
            "slot.start",
        ),
        ("beta", machine_body(message="a\x00b"), 422, "invalid_parameter", "'message'"),
    ],
)
async def test_create_request_rejected(
    api: httpx.AsyncClient,
    member: str,
    body: dict[str, Any],
    status: int,
    code: str,
    named: str,
) -> None:
    response = await api.post("/api/v1/requests", json=body, headers=auth(member))
    listed = await api.get("/api/v1/requests", headers=auth(member))

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert named in response.json()["error"]["message"]
    assert listed.json()["total"] == 0


async def test_create_request_closed_offer_conflict(storage: Storage, tmp_path: Path) -> None:
    storage.store_offer(machine_offer(accepts_requests=False), NOW)

    async with client_for(storage, tokens_file(tmp_path)) as client:
        response = await client.post("/api/v1/requests", json=machine_body(), headers=auth("beta"))
        listed = await client.get("/api/v1/requests", headers=auth("beta"))

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "request_offer_closed"
    assert "cnc-5ax-01" in response.json()["error"]["message"]
    assert listed.json()["total"] == 0


async def test_create_request_anonymous_forbidden(storage: Storage) -> None:
    storage.store_offer(machine_offer(accepts_requests=True), NOW)

    async with client_for(storage, None) as client:
        response = await client.post("/api/v1/requests", json=machine_body())

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "request_needs_member"


async def test_create_request_coordinator_forbidden(storage: Storage) -> None:
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    storage.create_user(
        username="coord",
        password_hash=hash_password(COORDINATOR_PASSWORD),
        role="coordinator",
        cluster=CLUSTER,
        member=None,
        display_name=None,
        must_change_password=False,
        now=NOW,
    )

    async with client_for(storage, None) as client:
        signed_in = await client.post(
            "/login", data={"username": "coord", "password": COORDINATOR_PASSWORD, "next": "/"}
        )
        response = await client.post("/api/v1/requests", json=machine_body())

    assert signed_in.status_code == 303
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "request_needs_member"


async def test_request_routes_need_credentials(api: httpx.AsyncClient) -> None:
    request_id = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"

    responses = [
        await api.post("/api/v1/requests", json=machine_body()),
        await api.get("/api/v1/requests"),
        await api.get(f"/api/v1/requests/{request_id}"),
        await api.post(f"/api/v1/requests/{request_id}/withdraw"),
    ]

    assert [response.status_code for response in responses] == [401, 401, 401, 401]


async def test_create_request_other_origin_forbidden(api: httpx.AsyncClient) -> None:
    headers = {**auth("beta"), "Origin": "https://evil.example"}

    response = await api.post("/api/v1/requests", json=machine_body(), headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin"


async def test_withdraw_request_rules(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/requests", json=machine_body(), headers=auth("beta"))
    path = f"/api/v1/requests/{created.json()['request_id']}/withdraw"

    by_owner = await api.post(path, headers=auth("acme"))
    by_outsider = await api.post(path, headers=auth("gamma"))
    withdrawn = await api.post(path, headers=auth("beta"))
    again = await api.post(path, headers=auth("beta"))

    assert by_owner.status_code == 403
    assert by_owner.json()["error"]["code"] == "request_withdraw_not_requester"
    assert by_outsider.status_code == 404
    assert withdrawn.status_code == 200
    assert withdrawn.json()["state"] == "withdrawn"
    assert [entry["state"] for entry in withdrawn.json()["history"]] == ["sent", "withdrawn"]
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "request_not_open"


async def test_get_request_shows_decline_reason(api: httpx.AsyncClient, storage: Storage) -> None:
    created = await api.post("/api/v1/requests", json=machine_body(), headers=auth("beta"))
    request_id = created.json()["request_id"]
    storage.apply_answer(
        Answer(
            request_id=request_id,
            cluster=CLUSTER,
            member="acme",
            resource="cnc-5ax-01",
            state=AnswerState.DECLINED,
            decided_at=NOW,
            reason="Maszyna zajęta",
            envelope=Envelope("a-1", 1),
        ),
        NOW + hours(1),
    )

    response = await api.get(f"/api/v1/requests/{request_id}", headers=auth("beta"))

    assert response.json()["state"] == "declined"
    assert response.json()["reason"] == "Maszyna zajęta"
    assert response.json()["history"][-1] == {
        "at": "2026-12-07T06:00:00+00:00",
        "state": "declined",
        "note": "Maszyna zajęta",
    }
