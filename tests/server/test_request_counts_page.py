"""The coordinator page's counts of requests per month and state, and their CSV download.

Each test runs the real application through httpx's ASGI transport on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from kooperant.intervals import Interval
from kooperant.protocol.request import Contact
from server.request_build import build_request
from server.storage import Storage, Viewer
from tests.server.helpers import T0, hours, machine_offer
from tests.server.request_page_helpers import (
    CLUSTER,
    NOW,
    client_for,
    csrf_of,
    fill,
    send_machine_request,
    sign_in,
)

BETA = Viewer(cluster=CLUSTER, member="beta")
# 30 November 2026, 23:30 UTC: already December in Warsaw.
LATE_NOVEMBER_UTC = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
MID_NOVEMBER = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def store_request(storage: Storage, created_at: datetime) -> None:
    request = build_request(
        cluster=CLUSTER,
        member="acme",
        resource="cnc-5ax-01",
        requester="beta",
        now=created_at,
        expires_in=timedelta(hours=48),
        contact=Contact("Anna Nowak", "anna@beta.example"),
        message="",
        slot=Interval(T0, T0 + hours(1)),
        amount=None,
    )
    storage.create_request(request, viewer=BETA, now=created_at)


@pytest.fixture
async def storage_with_requests(storage: Storage) -> AsyncIterator[Storage]:
    """Requests of beta: one in November, two in December (Warsaw), one of them withdrawn."""
    fill(storage)
    store_request(storage, MID_NOVEMBER)
    store_request(storage, LATE_NOVEMBER_UTC)
    async with client_for(storage) as beta:
        await sign_in(beta, "beta")
        sent = await send_machine_request(beta)
        path = sent.headers["location"].split("?")[0]
        token = csrf_of((await beta.get(path)).text)
        withdrawn = await beta.post(f"{path}/withdraw", data={"csrf_token": token})
        assert withdrawn.status_code == 303
    yield storage


def table_rows(page: str) -> list[list[str]]:
    table = page.split('id="request-counts"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    return [
        [html.unescape(cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
        for row in rows
    ]


async def test_coordinator_sees_counts_table(storage_with_requests: Storage) -> None:
    async with client_for(storage_with_requests) as coordinator:
        await sign_in(coordinator, "coord")
        page = await coordinator.get("/coordinator")

    rows = table_rows(page.text)

    assert page.status_code == 200
    assert rows[0] == [
        "Miesiąc",
        "wysłane",
        "dostarczone",
        "przyjęte",
        "odrzucone",
        "wygasłe",
        "wycofane",
        "Razem",
    ]
    assert rows[1] == ["12.2026", "1", "0", "0", "0", "0", "1", "2"]
    assert rows[2] == ["11.2026", "1", "0", "0", "0", "0", "0", "1"]
    assert rows[3] == ["Razem", "2", "0", "0", "0", "0", "1", "3"]
    assert 'href="/coordinator/requests.csv?lang=pl"' in page.text


async def test_counts_table_in_english(storage_with_requests: Storage) -> None:
    async with client_for(storage_with_requests) as coordinator:
        await sign_in(coordinator, "coord")
        page = await coordinator.get("/coordinator", params={"lang": "en"})

    rows = table_rows(page.text)

    assert rows[0][1] == "sent"
    assert rows[0][6] == "withdrawn"
    assert rows[1][0] == "2026-12"


async def test_counts_csv(storage_with_requests: Storage) -> None:
    async with client_for(storage_with_requests) as coordinator:
        await sign_in(coordinator, "coord")
        polish = await coordinator.get("/coordinator/requests.csv", params={"lang": "pl"})
        english = await coordinator.get("/coordinator/requests.csv", params={"lang": "en"})

    assert polish.status_code == 200
    assert polish.headers["content-type"] == "text/csv; charset=utf-8"
    assert polish.text.split("\r\n") == [
        "\ufeffmiesiąc;wysłane;dostarczone;przyjęte;odrzucone;wygasłe;wycofane;razem",
        "2026-12;1;0;0;0;0;1;2",
        "2026-11;1;0;0;0;0;0;1",
        "",
    ]
    assert english.text.split("\r\n")[0] == (
        "\ufeffmonth,sent,delivered,accepted,declined,expired,withdrawn,total"
    )
    assert (
        "kooperant-requests-pomorskie-metal-2026-12-07.csv"
        in (polish.headers["content-disposition"])
    )


async def test_counts_csv_member_forbidden(storage_with_requests: Storage) -> None:
    async with client_for(storage_with_requests) as beta:
        await sign_in(beta, "beta")
        response = await beta.get("/coordinator/requests.csv")

    assert response.status_code == 403
    assert "coordinator" in response.text


async def test_counts_empty_cluster(storage: Storage) -> None:
    fill(storage)
    async with client_for(storage) as coordinator:
        await sign_in(coordinator, "coord")
        page = await coordinator.get("/coordinator")

    assert 'id="request-counts-empty"' in page.text
    assert 'id="request-counts"' not in page.text


async def test_counts_need_coordinator_account(storage: Storage) -> None:
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    async with client_for(storage) as anonymous:
        page = await anonymous.get("/coordinator")
        export = await anonymous.get("/coordinator/requests.csv")

    assert page.status_code == 200
    assert 'id="request-counts-coordinator-only"' in page.text
    assert export.status_code == 403
