"""The HTTP API through its ASGI app: filters, paging, error bodies and the dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kooperant.intervals import Interval
from server.api import create_app
from server.status import ServerStatus
from server.storage import Storage
from tests.server.helpers import T0, hours, machine_offer, storage_offer


@pytest.fixture
async def api(sqlite_storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    sqlite_storage.store_offer(machine_offer(), T0)
    sqlite_storage.store_offer(
        machine_offer(
            resource="laser-02",
            name="Laser Trumpf",
            capabilities=("laser-cutting",),
            free=(Interval(T0 + hours(48), T0 + hours(50)),),
        ),
        T0,
    )
    sqlite_storage.store_offer(storage_offer(member="beta"), T0)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        yield client


async def get_json(api: httpx.AsyncClient, url: str, **params: Any) -> dict[str, Any]:
    response = await api.get(url, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def error_of(api: httpx.AsyncClient, url: str, **params: Any) -> tuple[int, dict[str, Any]]:
    response = await api.get(url, params=params)
    error: dict[str, Any] = response.json()["error"]
    return response.status_code, error


async def test_resources_lists_all_with_fields(api: httpx.AsyncClient) -> None:
    body = await get_json(api, "/api/v1/resources")

    assert body["total"] == 3
    assert body["limit"] == 100
    assert body["offset"] == 0
    cnc = body["items"][0]
    assert cnc["resource"] == "cnc-5ax-01"
    assert cnc["capabilities"] == ["5-axis-milling", "turning"]
    assert cnc["free_hours"] == 6.0
    assert cnc["free_intervals"][0] == {
        "start": "2026-12-07T06:00:00+00:00",
        "end": "2026-12-07T10:00:00+00:00",
    }
    assert cnc["horizon"]["start"] == "2026-12-07T06:00:00+00:00"
    assert cnc["updated_at"] == "2026-12-07T06:00:00+00:00"
    assert cnc["state"] == "NotExecuting"


async def test_resources_non_machine_has_null_hours(api: httpx.AsyncClient) -> None:
    body = await get_json(api, "/api/v1/resources", kind="storage")

    assert [item["resource"] for item in body["items"]] == ["hall-b"]
    item = body["items"][0]
    assert item["free_hours"] is None
    assert item["free_intervals"] == []
    assert item["amounts"] == [{"quantity": "pallet_places", "value": 40.0, "unit": "pallets"}]


async def test_resources_capability_filter(api: httpx.AsyncClient) -> None:
    both = await get_json(api, "/api/v1/resources", capability=["5-axis-milling", "turning"])
    laser = await get_json(api, "/api/v1/resources", capability="laser-cutting")
    mixed = await get_json(api, "/api/v1/resources", capability=["laser-cutting", "turning"])

    assert [item["resource"] for item in both["items"]] == ["cnc-5ax-01"]
    assert [item["resource"] for item in laser["items"]] == ["laser-02"]
    assert mixed["total"] == 0


async def test_resources_member_filter(api: httpx.AsyncClient) -> None:
    body = await get_json(api, "/api/v1/resources", member="beta")

    assert [item["resource"] for item in body["items"]] == ["hall-b"]


async def test_resources_time_window_clips(api: httpx.AsyncClient) -> None:
    body = await get_json(
        api,
        "/api/v1/resources",
        **{"from": "2026-12-07T08:00:00+01:00", "to": "2026-12-08T07:00:00+01:00"},
    )

    assert [item["resource"] for item in body["items"]] == ["cnc-5ax-01"]
    item = body["items"][0]
    assert item["free_intervals"] == [
        {"start": "2026-12-07T07:00:00+00:00", "end": "2026-12-07T10:00:00+00:00"}
    ]
    assert item["free_hours"] == pytest.approx(3.0)


async def test_resources_time_accepts_unencoded_plus(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/resources?from=2026-12-09T07:00:00+01:00")

    assert response.status_code == 200, response.text
    assert [item["resource"] for item in response.json()["items"]] == ["laser-02"]


async def test_resources_paging(api: httpx.AsyncClient) -> None:
    body = await get_json(api, "/api/v1/resources", limit=1, offset=1)

    assert body["total"] == 3
    assert body["limit"] == 1
    assert body["offset"] == 1
    assert [item["resource"] for item in body["items"]] == ["laser-02"]


async def test_from_without_offset_is_422(api: httpx.AsyncClient) -> None:
    status, error = await error_of(api, "/api/v1/resources", **{"from": "2026-12-07T08:00"})

    assert status == 422
    assert error["code"] == "invalid_parameter"
    assert "'from'" in error["message"]
    assert "'2026-12-07T08:00'" in error["message"]
    assert "UTC offset" in error["message"]


async def test_from_not_a_date_is_422(api: httpx.AsyncClient) -> None:
    status, error = await error_of(api, "/api/v1/resources", **{"from": "tomorrow"})

    assert status == 422
    assert "'tomorrow'" in error["message"]


async def test_to_before_from_is_422(api: httpx.AsyncClient) -> None:
    status, error = await error_of(
        api,
        "/api/v1/resources",
        **{"from": "2026-12-08T00:00:00Z", "to": "2026-12-07T00:00:00Z"},
    )

    assert status == 422
    assert error["code"] == "invalid_window"
    assert "'to'" in error["message"]
    assert "2026-12-07T00:00:00Z" in error["message"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "5000"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"kind": "spaceship"}, "kind"),
    ],
)
async def test_bad_query_parameter_is_422(
    api: httpx.AsyncClient, params: dict[str, str], named: str
) -> None:
    status, error = await error_of(api, "/api/v1/resources", **params)

    assert status == 422
    assert error["code"] == "invalid_parameter"
    assert f"'{named}'" in error["message"]
    assert repr(next(iter(params.values()))) in error["message"]


async def test_unknown_path_has_error_body(api: httpx.AsyncClient) -> None:
    status, error = await error_of(api, "/api/v1/nothing")

    assert status == 404
    assert error["code"] == "not_found"


async def test_members_lists_counts(api: httpx.AsyncClient) -> None:
    body = await get_json(api, "/api/v1/members")

    assert [(item["member"], item["resources"]) for item in body["items"]] == [
        ("acme", 2),
        ("beta", 1),
    ]
    assert body["items"][0]["last_seen"] == "2026-12-07T06:00:00+00:00"


async def test_rejected_messages_newest_first(
    api: httpx.AsyncClient, sqlite_storage: Storage
) -> None:
    sqlite_storage.store_rejected("t/1", b"first", "reason one", T0)
    sqlite_storage.store_rejected("t/2", b"x" * 5000, "reason two", T0 + hours(1))

    body = await get_json(api, "/api/v1/rejected-messages", limit=1)

    assert len(body["items"]) == 1
    item = body["items"][0]
    assert item["topic"] == "t/2"
    assert item["reason"] == "reason two"
    assert item["payload_excerpt"] == "x" * 1000
    assert item["payload_truncated"] is True


async def test_healthz_ok(api: httpx.AsyncClient) -> None:
    body = await get_json(api, "/healthz")

    assert body == {"status": "ok", "database": "ok", "broker": "connected"}


async def test_healthz_reports_broker_down(sqlite_storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_error="connection refused")
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        response = await client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "disconnected: connection refused"


async def test_healthz_reports_database_down(
    sqlite_storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    with sqlite_storage.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE resources")

    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        health = await client.get("/healthz")
        listing = await client.get("/api/v1/resources")

    assert health.status_code == 200  # SELECT 1 still works without the table
    assert listing.status_code == 503
    assert listing.json()["error"]["code"] == "database_unavailable"
    assert "kooperant.db" not in listing.json()["error"]["message"]
    assert "list resources" in caplog.text


async def test_dashboard_polish_by_default(api: httpx.AsyncClient) -> None:
    response = await api.get("/")

    assert response.status_code == 200
    html = response.text
    assert '<html lang="pl">' in html
    assert 'href="/members/pomorskie-metal/acme?lang=pl"' in html
    assert "cnc-5ax-01" in html
    assert "Wolne" in html
    assert "6,0 h" in html
    assert "07.12.2026 07:00" in html  # 06:00 UTC in Europe/Warsaw
    assert "nie pracuje" in html


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"lang": "en"}, {}), ({}, {"Accept-Language": "en-GB,en;q=0.9,pl;q=0.5"})],
)
async def test_dashboard_in_english(
    api: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    response = await api.get("/", params=params, headers=headers)

    html = response.text
    assert '<html lang="en">' in html
    assert "Search free capacity" in html
    assert "hall-b" in html
    assert "Free" in html
    assert "6.0 h" in html
    assert "2026-12-07 07:00" in html
    assert "not executing" in html


async def test_dashboard_lang_parameter_wins(api: httpx.AsyncClient) -> None:
    response = await api.get("/", params={"lang": "pl"}, headers={"Accept-Language": "en"})

    assert '<html lang="pl">' in response.text


async def test_dashboard_escapes_names(sqlite_storage: Storage) -> None:
    sqlite_storage.store_offer(machine_offer(name="<script>alert(1)</script>"), T0)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        html = (await client.get("/")).text

    assert "<script>" not in html
    assert "&lt;script&gt;" in html


async def test_times_shown_in_whole_seconds(sqlite_storage: Storage) -> None:
    received = T0 + timedelta(seconds=2, microseconds=987654)
    sqlite_storage.store_offer(machine_offer(), received)
    sqlite_storage.store_rejected("t/1", b"{}", "reason", received)
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    transport = httpx.ASGITransport(app=create_app(sqlite_storage, status))
    async with httpx.AsyncClient(transport=transport, base_url="http://kooperant") as client:
        resource = (await get_json(client, "/api/v1/resources"))["items"][0]
        member = (await get_json(client, "/api/v1/members"))["items"][0]
        rejected = (await get_json(client, "/api/v1/rejected-messages"))["items"][0]

    assert resource["updated_at"] == "2026-12-07T06:00:02+00:00"
    assert resource["generated_at"] == "2026-12-07T06:00:00+00:00"
    assert member["first_seen"] == "2026-12-07T06:00:02+00:00"
    assert member["last_seen"] == "2026-12-07T06:00:02+00:00"
    assert rejected["received_at"] == "2026-12-07T06:00:02+00:00"
