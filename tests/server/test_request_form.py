"""The request form of the offer page: who sees it, its checks, and what a post stores.

Each test runs the real application through httpx's ASGI transport on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, Offer
from server.storage import Storage, Viewer
from tests.server.helpers import hours, machine_offer, storage_offer
from tests.server.request_page_helpers import (
    CLUSTER,
    HALL_PATH,
    HIDDEN_PATH,
    MACHINE_PATH,
    NOW,
    client_for,
    csrf_of,
    fill,
    machine_form,
    send_machine_request,
    sign_in,
)

BETA = Viewer(cluster=CLUSTER, member="beta")


@pytest.fixture
async def beta(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard with beta signed in."""
    fill(storage)
    async with client_for(storage) as client:
        await sign_in(client, "beta")
        yield client


def sent_requests(storage: Storage) -> int:
    return storage.list_requests(viewer=BETA, role="sent").total


async def test_offer_form_shown_to_other_member(beta: httpx.AsyncClient) -> None:
    page = await beta.get(MACHINE_PATH)

    assert page.status_code == 200
    assert 'id="request-form"' in page.text
    assert 'name="start_date"' in page.text
    assert 'value="anna@beta.example"' in page.text
    assert 'value="Beta sp. z o.o."' in page.text
    assert "07.12.2026 07:00 – 07.12.2026 11:00" in page.text
    assert "start_date=2026-12-07&amp;start_time=07%3A00" in page.text


async def test_interval_link_fills_slot_fields(beta: httpx.AsyncClient) -> None:
    page = await beta.get(
        MACHINE_PATH,
        params={
            "start_date": "2026-12-08",
            "start_time": "07:00",
            "end_date": "2026-12-08",
            "end_time": "09:00",
        },
    )

    assert 'id="start_date" name="start_date" value="2026-12-08"' in page.text
    assert 'id="end_time" name="end_time" value="09:00"' in page.text


async def test_amount_form_lists_amounts(beta: httpx.AsyncClient) -> None:
    page = await beta.get(HALL_PATH, params={"lang": "en"})

    assert 'id="amount"' in page.text
    assert "pallet places 40.0 pallets" in page.text
    assert 'name="start_date"' not in page.text


async def test_owner_sees_no_form(storage: Storage) -> None:
    fill(storage)
    async with client_for(storage) as client:
        await sign_in(client, "acme")
        page = await client.get(MACHINE_PATH)

    assert page.status_code == 200
    assert 'id="request-form"' not in page.text
    assert 'id="request-sign-in"' not in page.text


async def test_coordinator_without_member_sees_no_form(storage: Storage) -> None:
    fill(storage)
    async with client_for(storage) as client:
        await sign_in(client, "coord")
        page = await client.get(MACHINE_PATH)

    assert page.status_code == 200
    assert 'id="request-form"' not in page.text


async def test_anonymous_sees_sign_in_link(storage: Storage) -> None:
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    async with client_for(storage) as client:
        page = await client.get(MACHINE_PATH)

    assert page.status_code == 200
    assert 'id="request-form"' not in page.text
    assert 'id="request-sign-in"' in page.text
    assert "/login?next=%2Foffers%2Fpomorskie-metal%2Facme%2Fcnc-5ax-01" in page.text


async def test_send_request_stores_and_redirects(beta: httpx.AsyncClient, storage: Storage) -> None:
    response = await send_machine_request(beta)

    assert response.status_code == 303, response.text
    stored = storage.list_requests(viewer=BETA, role="sent").items
    assert len(stored) == 1
    request = stored[0].request
    assert response.headers["location"] == f"/requests/{request.request_id}?lang=pl"
    assert request.slot == Interval(
        datetime(2026, 12, 7, 7, 0, tzinfo=UTC), datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    )
    assert request.contact.email == "anna@beta.example"
    assert request.contact.phone is None
    assert request.message == "Frezowanie 40 detali"
    assert request.expires_at - request.created_at == (
        datetime(2026, 12, 9, tzinfo=UTC) - datetime(2026, 12, 7, tzinfo=UTC)
    )


async def test_send_amount_request(beta: httpx.AsyncClient, storage: Storage) -> None:
    page = await beta.get(HALL_PATH)
    form = {
        "csrf_token": csrf_of(page.text),
        "amount": '["pallet_places", "pallets", null]',
        "amount_value": "12,5",
        "message": "",
        "contact_name": "Anna Nowak",
        "contact_phone": "+48 58 123 45 67",
        "expires_in_hours": "168",
    }

    response = await beta.post(f"{HALL_PATH}/request", data=form)

    assert response.status_code == 303, response.text
    request = storage.list_requests(viewer=BETA, role="sent").items[0].request
    assert request.amount is not None
    assert request.amount.value == 12.5
    assert request.amount.quantity == "pallet_places"
    assert request.contact.phone == "+48 58 123 45 67"


@pytest.mark.parametrize(
    ("changes", "field", "polish"),
    [
        (
            {"start_date": "2026-13-01"},
            "slot_start",
            "Niepoprawna data lub godzina „2026-13-01 08:00”",
        ),
        (
            {"end_time": "07:30"},
            "slot_end",
            "Koniec 2026-12-07 07:30 nie jest później niż początek",
        ),
        ({"message": "x" * 2001}, "message", "Wiadomość ma 2001 znaków"),
        (
            {"contact_email": "anna-at-beta"},
            "contact_email",
            "Niepoprawny adres e-mail „anna-at-beta”",
        ),
        ({"contact_email": ""}, "contact_email", "Podaj e-mail, telefon lub oba"),
        ({"contact_name": " "}, "contact_name", "Podaj osobę do kontaktu."),
        ({"contact_phone": "call me"}, "contact_phone", "Niepoprawny numer telefonu „call me”"),
        ({"expires_in_hours": "9999"}, "expires_in_hours", "Niepoprawny czas ważności „9999”"),
    ],
)
async def test_form_error_keeps_input(
    beta: httpx.AsyncClient, storage: Storage, changes: dict[str, str], field: str, polish: str
) -> None:
    typed = machine_form("", **changes)

    response = await send_machine_request(beta, **changes)
    text = html.unescape(response.text)

    assert response.status_code == 400
    assert f'id="error-{field}"' in response.text
    assert polish in text
    assert f">{typed['message']}</textarea>" in text
    for name in ("start_date", "start_time", "end_date", "end_time", "contact_email"):
        assert f'name="{name}" value="{typed[name]}"' in text
    assert f'name="contact_name" value="{typed["contact_name"]}"' in text
    assert sent_requests(storage) == 0


async def test_form_error_in_english(beta: httpx.AsyncClient) -> None:
    page = await beta.get(MACHINE_PATH)
    form = machine_form(csrf_of(page.text), end_time="07:30")

    response = await beta.post(f"{MACHINE_PATH}/request?lang=en", data=form)

    assert response.status_code == 400
    assert "End 2026-12-07 07:30 is not after start 2026-12-07 08:00" in response.text
    assert '<html lang="en">' in response.text


async def test_slot_not_free_keeps_input(beta: httpx.AsyncClient, storage: Storage) -> None:
    response = await send_machine_request(beta, start_time="10:00", end_time="12:00")
    text = html.unescape(response.text)

    assert response.status_code == 422
    assert 'id="error-slot"' in response.text
    assert "Ten czas nie jest wolny — wybierz czas" in text
    assert "zająć" not in text
    assert 'value="12:00"' in text
    assert "Frezowanie 40 detali" in text
    assert "07.12.2026 07:00 – 07.12.2026 11:00" in text
    assert sent_requests(storage) == 0


async def test_amount_above_free_keeps_input(beta: httpx.AsyncClient, storage: Storage) -> None:
    page = await beta.get(HALL_PATH)
    form = {
        "csrf_token": csrf_of(page.text),
        "amount": '["pallet_places", "pallets", null]',
        "amount_value": "41",
        "contact_name": "Anna Nowak",
        "contact_email": "anna@beta.example",
        "expires_in_hours": "48",
    }

    response = await beta.post(f"{HALL_PATH}/request?lang=en", data=form)

    assert response.status_code == 422
    assert 'id="error-amount_value"' in response.text
    assert "more than the 40 pallets free" in response.text
    assert 'value="41"' in response.text
    assert sent_requests(storage) == 0


async def test_hidden_offer_keeps_input(beta: httpx.AsyncClient, storage: Storage) -> None:
    token = csrf_of((await beta.get(MACHINE_PATH)).text)

    response = await beta.post(f"{HIDDEN_PATH}/request", data=machine_form(token))

    assert response.status_code == 404
    assert 'id="error-form"' in response.text
    assert "Brak oferty zasobu secret-cnc" in response.text
    assert "Frezowanie 40 detali" in response.text
    assert sent_requests(storage) == 0


async def test_missing_csrf_rejected(beta: httpx.AsyncClient, storage: Storage) -> None:
    form = machine_form("")
    del form["csrf_token"]

    missing = await beta.post(f"{MACHINE_PATH}/request", data=form)
    wrong = await beta.post(f"{MACHINE_PATH}/request", data=machine_form("not-the-token"))

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert sent_requests(storage) == 0


async def test_other_origin_rejected(beta: httpx.AsyncClient, storage: Storage) -> None:
    token = csrf_of((await beta.get(MACHINE_PATH)).text)

    response = await beta.post(
        f"{MACHINE_PATH}/request",
        data=machine_form(token),
        headers={"Origin": "https://evil.example"},
    )

    assert response.status_code == 403
    assert sent_requests(storage) == 0


async def test_owner_post_rejected(storage: Storage) -> None:
    fill(storage)
    async with client_for(storage) as client:
        await sign_in(client, "acme")
        token = csrf_of((await client.get(MACHINE_PATH)).text)
        response = await client.post(f"{MACHINE_PATH}/request", data=machine_form(token))

    assert response.status_code == 403
    assert "Twoja własna oferta" in response.text


async def test_post_without_session_signs_in(storage: Storage) -> None:
    fill(storage)
    async with client_for(storage) as client:
        response = await client.post(f"{MACHINE_PATH}/request", data=machine_form("x"))

    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=%2Foffers%2F")


async def test_closed_offer_shows_note_not_form(beta: httpx.AsyncClient, storage: Storage) -> None:
    storage.store_offer(machine_offer(generated_at=NOW + hours(1)), NOW + hours(1))

    page = await beta.get(MACHINE_PATH, params={"lang": "en"})

    assert page.status_code == 200
    assert 'id="request-form"' not in page.text
    assert 'id="requests-closed"' in page.text
    assert "The owner does not take requests for this offer." in page.text


async def test_closed_offer_note_for_anonymous(storage: Storage) -> None:
    storage.store_offer(machine_offer(), NOW)
    async with client_for(storage) as client:
        page = await client.get(MACHINE_PATH)

    assert 'id="request-sign-in"' not in page.text
    assert "Właściciel nie przyjmuje zapytań o tę ofertę." in page.text


async def test_form_and_withdraw_wake_router(storage: Storage) -> None:
    fill(storage)
    changed = asyncio.Event()
    async with client_for(storage, changed) as client:
        await sign_in(client, "beta")
        sent = await send_machine_request(client)
        woken_by_send = changed.is_set()
        changed.clear()
        page = await client.get(sent.headers["location"])
        withdrawn = await client.post(
            sent.headers["location"].split("?")[0] + "/withdraw",
            data={"csrf_token": csrf_of(page.text)},
        )

    assert sent.status_code == 303
    assert woken_by_send
    assert withdrawn.status_code == 303, withdrawn.text
    assert changed.is_set()


@pytest.mark.parametrize(
    ("changes", "field", "language", "expected"),
    [
        (
            {"contact_name": "Anna\x1b[31mNowak"},
            "contact_name",
            "pl",
            "Pole zawiera niedozwolony znak sterujący lub formatujący U+001B na pozycji 5",
        ),
        (
            {"contact_email": "anna@beta.example\u202e"},
            "contact_email",
            "pl",
            "znak sterujący lub formatujący U+202E na pozycji 18",
        ),
        (
            {"contact_phone": "+48 58\u2066 123"},
            "contact_phone",
            "en",
            "The field contains the control or format character U+2066 at position 7",
        ),
        (
            {"message": "Dzień\u202edobry"},
            "message",
            "en",
            "The message contains the control or format character U+202E at position 6",
        ),
        (
            {"message": "Dzień\rdobry"},
            "message",
            "pl",
            "Wiadomość zawiera niedozwolony znak sterujący lub formatujący U+000D na pozycji 6",
        ),
    ],
)
async def test_form_control_character_rejected(
    beta: httpx.AsyncClient,
    storage: Storage,
    changes: dict[str, str],
    field: str,
    language: str,
    expected: str,
) -> None:
    page = await beta.get(MACHINE_PATH)
    form = machine_form(csrf_of(page.text), **changes)

    response = await beta.post(f"{MACHINE_PATH}/request?lang={language}", data=form)

    assert response.status_code == 400
    assert f'id="error-{field}"' in response.text
    assert expected in html.unescape(response.text)
    assert sent_requests(storage) == 0


async def test_form_message_lines_kept(beta: httpx.AsyncClient, storage: Storage) -> None:
    response = await send_machine_request(beta, message="Dzień dobry,\r\n\t40 detali\r\nAnna")

    assert response.status_code == 303, response.text
    request = storage.list_requests(viewer=BETA, role="sent").items[0].request
    assert request.message == "Dzień dobry,\n\t40 detali\nAnna"


def hall_form(csrf_token: str, value: str) -> dict[str, str]:
    return {
        "csrf_token": csrf_token,
        "amount": '["pallet_places", "pallets", null]',
        "amount_value": value,
        "contact_name": "Anna Nowak",
        "contact_email": "anna@beta.example",
        "expires_in_hours": "48",
    }


@pytest.mark.parametrize(
    ("language", "typed", "expected"),
    [
        ("pl", "40,5", "Żądane 40,5 pallets (pallet_places) to więcej niż wolne 40 pallets"),
        ("pl", "40,125", "Żądane 40,125 pallets"),
        ("en", "40.5", "The requested 40.5 pallets of pallet_places is more than the 40 pallets"),
    ],
)
async def test_amount_error_number_in_page_language(
    beta: httpx.AsyncClient, storage: Storage, language: str, typed: str, expected: str
) -> None:
    page = await beta.get(HALL_PATH)

    response = await beta.post(
        f"{HALL_PATH}/request?lang={language}", data=hall_form(csrf_of(page.text), typed)
    )
    text = html.unescape(response.text)

    assert response.status_code == 422
    assert expected in text
    if language == "pl":
        assert "40.5" not in text
    assert sent_requests(storage) == 0


def hall_with_amounts(*amounts: Amount) -> Offer:
    offer = storage_offer(accepts_requests=True)
    return replace(offer, amounts=amounts, generated_at=offer.generated_at + timedelta(minutes=1))


async def test_amount_with_nothing_free_not_offered(
    beta: httpx.AsyncClient, storage: Storage
) -> None:
    offer = hall_with_amounts(
        Amount("pallet_places", 0.0, "pallets"),
        Amount("pallet_places", None, "pallets", "chłodnia", Band(0.0, 20.0)),
        Amount("pallet_places", None, "pallets", "mroźnia", Band(10.0, 20.0)),
    )
    storage.store_offer(offer, NOW)

    page = await beta.get(HALL_PATH)
    keys = re.findall(r'<option value="(\[[^"]*)"', page.text)
    options = [json.loads(html.unescape(key)) for key in keys]

    assert page.status_code == 200
    assert options == [["pallet_places", "pallets", "mroźnia"]]
    assert 'id="requests-nothing-free"' not in page.text


async def test_offer_with_nothing_free_shows_note(
    beta: httpx.AsyncClient, storage: Storage
) -> None:
    storage.store_offer(hall_with_amounts(Amount("pallet_places", 0.0, "pallets")), NOW)

    page = await beta.get(HALL_PATH)
    english = await beta.get(HALL_PATH, params={"lang": "en"})

    assert page.status_code == 200
    assert 'id="requests-nothing-free"' in page.text
    assert "Ta oferta nie ma teraz żadnej wolnej ilości" in page.text
    assert "Nothing of this offer is free now" in english.text
    assert 'id="amount"' not in page.text
    assert 'id="request-form"' not in page.text


async def test_stale_post_for_nothing_free(beta: httpx.AsyncClient, storage: Storage) -> None:
    token = csrf_of((await beta.get(HALL_PATH)).text)
    storage.store_offer(hall_with_amounts(Amount("pallet_places", 0.0, "pallets")), NOW)

    response = await beta.post(f"{HALL_PATH}/request", data=hall_form(token, "1"))
    text = html.unescape(response.text)

    assert response.status_code == 422
    assert 'id="requests-nothing-free"' in response.text
    assert "co najwyżej 0" not in text
    assert sent_requests(storage) == 0
