"""The request pages: the list of sent and received requests, one request's page, withdrawal.

Each test runs the real application through httpx's ASGI transport on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from kooperant.protocol.answer import Answer, AnswerState
from kooperant.protocol.envelope import Envelope
from server import request_routes
from server.passwords import hash_password
from server.storage import RequestState, Storage, Viewer
from tests.server.helpers import hours
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
GAMMA_PASSWORD = "gamma's own password"


@dataclass
class Site:
    storage: Storage
    beta: httpx.AsyncClient
    request_id: str
    path: str


@pytest.fixture
async def site(storage: Storage) -> AsyncIterator[Site]:
    """The dashboard with beta signed in, after beta sent one request for acme's machine."""
    fill(storage)
    async with client_for(storage) as client:
        await sign_in(client, "beta")
        sent = await send_machine_request(client)
        assert sent.status_code == 303, sent.text
        request_id = storage.list_requests(viewer=BETA, role="sent").items[0].request.request_id
        yield Site(storage, client, request_id, f"/requests/{request_id}")


def state_of(site: Site) -> RequestState:
    record = site.storage.get_request(site.request_id, viewer=BETA)
    assert record is not None
    return record.state


async def test_requests_list_sent_in_polish(site: Site) -> None:
    page = await site.beta.get("/requests")
    text = html.unescape(page.text)

    assert page.status_code == 200
    assert 'id="requests-sent"' in page.text
    assert 'id="requests-received-empty"' in page.text
    assert f'href="/requests/{site.request_id}?lang=pl"' in page.text
    assert 'href="/offers/pomorskie-metal/acme/cnc-5ax-01?lang=pl"' in page.text
    assert "07.12.2026 08:00 – 07.12.2026 09:00" in text
    assert '<span class="state sent">wysłane</span>' in page.text
    assert 'href="/requests" class="active" aria-current="page">Zapytania</a>' in page.text


async def test_requests_list_in_english(site: Site) -> None:
    page = await site.beta.get("/requests", params={"lang": "en"})

    assert '<span class="state sent">sent</span>' in page.text
    assert "2026-12-07 08:00 – 2026-12-07 09:00" in html.unescape(page.text)
    assert ">Requests</a>" in page.text


async def test_requests_list_received_by_owner(site: Site) -> None:
    async with client_for(site.storage) as acme:
        await sign_in(acme, "acme")
        page = await acme.get("/requests")

    assert 'id="requests-received"' in page.text
    assert 'id="requests-sent-empty"' in page.text
    assert f"/requests/{site.request_id}" in page.text


async def test_requests_list_paged(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_routes, "REQUESTS_PAGE_SIZE", 2)
    for start, end in (("09:00", "10:00"), ("07:00", "08:00")):
        sent = await send_machine_request(site.beta, start_time=start, end_time=end)
        assert sent.status_code == 303

    first = await site.beta.get("/requests")
    second = await site.beta.get("/requests", params={"sent_page": "2"})
    invalid = await site.beta.get("/requests", params={"sent_page": "0"})

    assert first.text.count('<span class="state sent">') == 2
    assert "Strona 1 z 2" in first.text
    assert 'href="?sent_page=2&amp;received_page=1&amp;lang=pl" rel="next"' in first.text
    assert second.status_code == 200
    assert second.text.count('<span class="state sent">') == 1
    for item in site.storage.list_requests(viewer=BETA, role="sent").items:
        assert (item.request.request_id in first.text) != (item.request.request_id in second.text)
    assert 'href="?sent_page=1&amp;received_page=1&amp;lang=pl" rel="prev"' in second.text
    assert invalid.status_code == 400
    assert "Numer strony „0”" in html.unescape(invalid.text)


async def test_coordinator_without_member_has_no_requests(site: Site) -> None:
    async with client_for(site.storage) as coordinator:
        await sign_in(coordinator, "coord")
        search = await coordinator.get("/")
        page = await coordinator.get("/requests")

    assert 'href="/requests"' not in search.text
    assert 'id="requests-no-member"' in page.text


async def test_request_page_shows_log_and_withdraw(site: Site) -> None:
    page = await site.beta.get(site.path)

    assert page.status_code == 200
    assert 'id="request-log"' in page.text
    assert 'id="withdraw"' in page.text
    assert "Frezowanie 40 detali" in page.text
    assert "anna@beta.example" in page.text


async def test_request_page_hidden_from_others(site: Site) -> None:
    site.storage.register_member(CLUSTER, "gamma", NOW)
    site.storage.create_user(
        username="gamma",
        password_hash=hash_password(GAMMA_PASSWORD),
        role="member",
        cluster=CLUSTER,
        member="gamma",
        display_name=None,
        must_change_password=False,
        now=NOW,
    )
    async with client_for(site.storage) as gamma:
        signed_in = await gamma.post(
            "/login", data={"username": "gamma", "password": GAMMA_PASSWORD, "next": "/"}
        )
        page = await gamma.get(site.path)
        token = csrf_of((await gamma.get("/requests")).text)
        withdraw = await gamma.post(f"{site.path}/withdraw", data={"csrf_token": token})

    assert signed_in.status_code == 303
    assert page.status_code == 404
    assert "Frezowanie" not in page.text
    assert withdraw.status_code == 404
    assert state_of(site) == RequestState.SENT


async def test_request_page_invalid_id(site: Site) -> None:
    page = await site.beta.get("/requests/not-a-request")

    assert page.status_code == 404


async def test_owner_sees_no_withdraw_button(site: Site) -> None:
    async with client_for(site.storage) as acme:
        await sign_in(acme, "acme")
        page = await acme.get(site.path)
        token = csrf_of(page.text)
        withdraw = await acme.post(f"{site.path}/withdraw", data={"csrf_token": token})

    assert page.status_code == 200
    assert 'id="withdraw"' not in page.text
    assert withdraw.status_code == 403
    assert "może wycofać tylko członek, który je wysłał" in withdraw.text
    assert state_of(site) == RequestState.SENT


async def test_withdraw_request(site: Site) -> None:
    token = csrf_of((await site.beta.get(site.path)).text)

    response = await site.beta.post(f"{site.path}/withdraw", data={"csrf_token": token})
    page = await site.beta.get(site.path, params={"lang": "en"})
    again = await site.beta.post(f"{site.path}/withdraw", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["location"] == f"{site.path}?lang=pl"
    assert state_of(site) == RequestState.WITHDRAWN
    assert '<span class="state withdrawn">withdrawn</span>' in page.text
    assert 'id="withdraw"' not in page.text
    assert page.text.count("<tr><td>") == 2
    assert again.status_code == 409


async def test_withdraw_without_csrf_rejected(site: Site) -> None:
    missing = await site.beta.post(f"{site.path}/withdraw", data={})
    wrong = await site.beta.post(f"{site.path}/withdraw", data={"csrf_token": "x"})

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert state_of(site) == RequestState.SENT


async def test_declined_request_shows_reason(site: Site) -> None:
    site.storage.apply_answer(
        Answer(
            request_id=site.request_id,
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

    page = await site.beta.get(site.path)

    assert 'id="request-reason">Maszyna zajęta</dd>' in page.text
    assert '<span class="state declined">odrzucone</span>' in page.text
    assert 'id="withdraw"' not in page.text


@pytest.mark.parametrize(
    ("language", "expected", "raw"),
    [
        ("pl", "ma już stan „wycofane”", "stan withdrawn"),
        ("en", "is “withdrawn” already", None),
    ],
)
async def test_withdraw_again_names_state_translated(
    site: Site, language: str, expected: str, raw: str | None
) -> None:
    token = csrf_of((await site.beta.get(site.path)).text)
    path = f"{site.path}/withdraw?lang={language}"

    first = await site.beta.post(path, data={"csrf_token": token})
    again = await site.beta.post(path, data={"csrf_token": token})
    text = html.unescape(again.text)

    assert first.status_code == 303
    assert again.status_code == 409
    assert expected in text
    if raw is not None:
        assert raw not in text
