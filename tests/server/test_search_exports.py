"""CSV exports of a search and the iCalendar feed of an offer, with its signed links."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from kooperant.protocol import Amount, Offer, Price, ResourceKind
from server.ics import escape_text, fold_line
from server.storage import Storage
from tests.server.helpers import T0, hours, machine_offer
from tests.server.search_helpers import fill_search_cluster
from tests.server.test_search_pages import _tokens, client_for

TRICKY_NAME = '=HYPERLINK("x"); Łódź, hala\\B ' + "ż" * 40


@pytest.fixture
async def open_client(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    fill_search_cluster(storage)
    storage.store_offer(machine_offer("c1", "acme", "tricky", name=TRICKY_NAME), T0)
    async with client_for(storage) as client:
        yield client


def _rows(body: bytes, delimiter: str) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=delimiter))


async def test_csv_polish_dialect(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/export/search.csv", params={"kind": "storage"})

    rows = _rows(response.content, ";")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert rows[0][:3] == ["klaster", "członek", "zasób"]
    assert [row[2] for row in rows[1:]] == ["hall", "racks"]
    assert rows[2][8] == ""
    assert rows[2][9] == "miejsca paletowe 100–200 pal. · powierzchnia 12,5 m²"
    assert response.headers["x-total-count"] == "2"


async def test_csv_english_dialect(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get(
        "/export/search.csv", params={"kind": "machine", "sort": "name", "lang": "en"}
    )

    rows = _rows(response.content, ",")
    assert rows[0][:3] == ["cluster", "member", "resource"]
    assert [row[2] for row in rows[1:]] == ["tricky", "laser", "press", "cnc"]
    assert rows[2][7] == "30"
    assert rows[3][8] == "10–20"
    assert rows[2][10] == "2026-12-09T06:00:00+00:00"


async def test_csv_exports_all_pages(storage: Storage) -> None:
    for index in range(40):
        storage.store_offer(machine_offer("c1", "acme", f"m{index:02d}"), T0)
    async with client_for(storage) as client:
        response = await client.get("/export/search.csv", params={"page": "2"})

    assert len(_rows(response.content, ";")) == 41


async def test_csv_guards_formulas(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/export/search.csv", params={"lang": "en"})

    rows = _rows(response.content, ",")
    tricky = next(row for row in rows if row[2] == "tricky")
    assert tricky[3] == "'" + TRICKY_NAME


async def test_csv_bad_parameter(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/export/search.csv", params={"from": "x", "lang": "en"})

    assert response.status_code == 400
    assert "The date 'x' in the field 'Free from' is invalid" in response.text


async def test_csv_edge_date_rejected(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/export/search.csv", params={"to": "9999-12-31"})

    assert response.status_code == 400
    assert "Data „9999-12-31”" in response.text
    assert "od 2000-01-01 do 2100-12-31" in response.text


async def test_history_csv_both_languages(storage: Storage, tmp_path: Path) -> None:
    for step in range(3):
        version = replace(
            machine_offer("c1", "beta", "laser"),
            generated_at=T0 + hours(step),
            free_hours=2.5 * step,
            audience=("gamma",),
        )
        storage.store_offer(version, T0 + hours(step))
    async with client_for(storage, _tokens(tmp_path)) as client:
        gamma = {"Authorization": "Bearer token-gamma"}
        polish = await client.get("/offers/c1/beta/laser/history.csv", headers=gamma)
        english = await client.get(
            "/offers/c1/beta/laser/history.csv", params={"lang": "en"}, headers=gamma
        )
        outsider = await client.get(
            "/offers/c1/beta/laser/history.csv", headers={"Authorization": "Bearer token-acme"}
        )

    polish_rows = _rows(polish.content, ";")
    english_rows = _rows(english.content, ",")
    assert polish_rows[0][:2] == ["utworzona (UTC)", "otrzymana (UTC)"]
    assert [row[3] for row in polish_rows[1:]] == ["5", "2,5", "0"]
    assert english_rows[0][:2] == ["generated (UTC)", "received (UTC)"]
    assert [row[3] for row in english_rows[1:]] == ["5", "2.5", "0"]
    assert english_rows[1][0] == "2026-12-07T08:00:00+00:00"
    assert outsider.status_code == 404
    assert "2026-12-07" not in outsider.text


async def test_api_csv_export(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get(
        "/api/v1/resources.csv", params={"region": "slaskie", "lang": "en", "limit": "1"}
    )

    rows = _rows(response.content, ",")
    assert [row[2] for row in rows[1:]] == ["laser", "racks"]


def test_escape_text_special_characters() -> None:
    assert escape_text("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"


def test_fold_line_keeps_characters_whole() -> None:
    line = "SUMMARY:" + "ż" * 60

    folded = fold_line(line)
    parts = folded.split("\r\n")

    assert all(len(part.encode("utf-8")) <= 75 for part in parts)
    assert all(part.startswith(" ") for part in parts[1:])
    assert "".join(part[1:] if index else part for index, part in enumerate(parts)) == line


def _unfold(body: str) -> list[str]:
    assert body.endswith("\r\n")
    assert "\n" not in body.replace("\r\n", "")
    lines: list[str] = []
    for line in body.split("\r\n")[:-1]:
        assert len(line.encode("utf-8")) <= 75
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


async def test_feed_is_valid_icalendar(open_client: httpx.AsyncClient) -> None:
    page = await open_client.get("/offers/c1/acme/tricky")
    link = page.text.split('id="ics-link"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    link = link.replace("&amp;", "&")

    first = await open_client.get(link)
    second = await open_client.get(link)
    lines = _unfold(first.text)

    assert first.status_code == 200
    assert first.headers["content-type"] == "text/calendar; charset=utf-8"
    assert lines[0] == "BEGIN:VCALENDAR"
    assert lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines
    assert any(line.startswith("PRODID:") for line in lines)
    assert lines.count("BEGIN:VEVENT") == 2
    assert "DTSTART:20261207T060000Z" in lines
    assert "DTEND:20261207T100000Z" in lines
    assert "DTSTAMP:20261207T070000Z" in lines
    summary = next(line for line in lines if line.startswith("SUMMARY:"))
    assert summary.startswith('SUMMARY:Wolne: =HYPERLINK("x")\\; Łódź\\, hala\\\\B ż')
    uids = [line for line in lines if line.startswith("UID:")]
    assert len(set(uids)) == 2
    assert uids == [line for line in _unfold(second.text) if line.startswith("UID:")]


async def test_feed_rejects_wrong_signature(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/offers/c1/acme/cnc.ics", params={"sig": "0" * 64})

    assert response.status_code == 403


async def test_feed_link_follows_audience(storage: Storage, tmp_path: Path) -> None:
    shared = replace(machine_offer("c1", "beta", "shared"), audience=("acme",))
    storage.store_offer(shared, T0)
    async with client_for(storage, _tokens(tmp_path)) as client:
        headers = {"Authorization": "Bearer token-acme"}
        page = await client.get("/offers/c1/beta/shared", headers=headers)
        link = page.text.split('id="ics-link"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
        link = link.replace("&amp;", "&")
        before = await client.get(link)
        forged = await client.get(link.replace("viewer=c1%2Facme", "viewer=c1%2Fgamma"))
        narrowed = replace(shared, audience=("gamma",), generated_at=T0 + hours(1))
        storage.store_offer(narrowed, T0 + hours(1))
        after = await client.get(link)

    assert "viewer=c1%2Facme" in link
    assert before.status_code == 200
    assert "BEGIN:VEVENT" in before.text
    assert forged.status_code == 403
    assert after.status_code == 404


async def test_feed_with_bearer_token(storage: Storage, tmp_path: Path) -> None:
    storage.store_offer(machine_offer("c1", "beta", "cnc"), T0)
    async with client_for(storage, _tokens(tmp_path)) as client:
        with_token = await client.get(
            "/offers/c1/beta/cnc.ics", headers={"Authorization": "Bearer token-acme"}
        )
        without = await client.get("/offers/c1/beta/cnc.ics")
        anonymous_link = await client.get(
            "/offers/c1/beta/cnc.ics",
            params={"sig": _anonymous_signature(storage, ("c1", "beta", "cnc"))},
        )

    assert with_token.status_code == 200
    assert without.status_code == 403
    assert anonymous_link.status_code == 403


def _anonymous_signature(storage: Storage, key: tuple[str, str, str]) -> str:
    from server.feed_links import FEED_KEY_NAME, feed_signature
    from server.storage import ANONYMOUS

    return feed_signature(storage.secret(FEED_KEY_NAME), ANONYMOUS, *key)


def test_feed_link_of_coordinator_round_trips() -> None:
    from server.feed_links import signed_feed_path, viewer_of_signed_link
    from server.storage import Viewer

    key = b"k" * 32
    coordinator = Viewer("c1", None, coordinator=True)
    path = signed_feed_path(key, coordinator, "c1", "beta", "cnc")
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))

    assert query["viewer"] == "c1%2F"
    assert viewer_of_signed_link(key, "c1/", query["sig"], "c1", "beta", "cnc") == coordinator
    assert viewer_of_signed_link(key, "c1/x", query["sig"], "c1", "beta", "cnc") is None


async def test_csv_numbers_without_exponent(storage: Storage) -> None:
    offer = replace(machine_offer("c1", "acme", "big"), free_hours=1234567.5)
    storage.store_offer(offer, T0)
    async with client_for(storage) as client:
        polish = await client.get("/export/search.csv")
        english = await client.get("/export/search.csv", params={"lang": "en"})
        history = await client.get("/offers/c1/acme/big/history.csv")

    assert _rows(polish.content, ";")[1][7] == "1234567,5"
    assert _rows(english.content, ",")[1][7] == "1234567.5"
    assert _rows(history.content, ";")[1][3] == "1234567,5"


async def test_csv_keeps_small_fractions(storage: Storage) -> None:
    offer = replace(machine_offer("c1", "acme", "tiny"), free_hours=0.125)
    storage.store_offer(offer, T0)
    async with client_for(storage) as client:
        response = await client.get("/export/search.csv")

    assert _rows(response.content, ";")[1][7] == "0,125"


async def test_csv_applies_member_filter(open_client: httpx.AsyncClient) -> None:
    page = await open_client.get("/", params={"member": "beta"})
    export = await open_client.get("/export/search.csv", params={"member": "beta"})

    rows = _rows(export.content, ";")
    assert sorted(row[2] for row in rows[1:]) == ["laser", "racks"]
    assert {row[1] for row in rows[1:]} == {"beta"}
    assert "Znalezione oferty: 2" in page.text
    assert 'name="member" value="beta"' in page.text


async def test_csv_joins_capabilities_with_comma(open_client: httpx.AsyncClient) -> None:
    response = await open_client.get("/export/search.csv", params={"capability": "turning"})

    rows = _rows(response.content, ";")
    assert rows[0][5] == "możliwości (oddzielone „, ”)"
    assert rows[1][5] == "5-axis-milling, turning"


async def test_feed_rejects_repeated_signature(open_client: httpx.AsyncClient) -> None:
    page = await open_client.get("/offers/c1/acme/cnc")
    link = page.text.split('id="ics-link"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    link = link.replace("&amp;", "&")
    good = link.split("sig=", 1)[1].split("&", 1)[0]

    valid = await open_client.get(link)
    repeated = await open_client.get(f"/offers/c1/acme/cnc.ics?sig=xyz&sig={good}")
    reversed_order = await open_client.get(f"/offers/c1/acme/cnc.ics?sig={good}&sig=xyz")

    assert valid.status_code == 200
    assert repeated.status_code == 400
    assert "'sig' is repeated" in repeated.text
    assert reversed_order.status_code == 400


def _priced_supplies() -> Offer:
    return Offer(
        cluster="c1",
        member="acme",
        resource="sheets",
        kind=ResourceKind.SUPPLIES,
        generated_at=T0,
        amounts=(Amount("sheets", 120.0, "pcs"),),
        price=Price(42.5, "PLN", "sheet"),
        suppliers=("Huta Sp. z o.o.",),
        customers=("Stocznia SA", "Meble SA"),
    )


async def test_offer_page_shows_commercial_fields(storage: Storage) -> None:
    storage.store_offer(_priced_supplies(), T0)
    storage.store_offer(machine_offer("c1", "acme", "plain"), T0)
    async with client_for(storage) as client:
        polish = await client.get("/offers/c1/acme/sheets")
        english = await client.get("/offers/c1/acme/sheets", params={"lang": "en"})
        plain = await client.get("/offers/c1/acme/plain")

    assert '<dd id="offer-price">42,5 PLN za sheet</dd>' in polish.text
    assert '<dd id="offer-suppliers">Huta Sp. z o.o.</dd>' in polish.text
    assert '<dd id="offer-customers">Stocznia SA, Meble SA</dd>' in polish.text
    assert '<dd id="offer-price">42.5 PLN per sheet</dd>' in english.text
    assert 'id="offer-price"' not in plain.text
    assert 'id="offer-suppliers"' not in plain.text


async def test_csv_commercial_columns(storage: Storage) -> None:
    storage.store_offer(_priced_supplies(), T0)
    storage.store_offer(machine_offer("c1", "acme", "plain"), T0)
    async with client_for(storage) as client:
        response = await client.get("/export/search.csv", params={"sort": "name"})

    rows = _rows(response.content, ";")
    assert rows[0][13:] == [
        "cena",
        "waluta ceny",
        "jednostka ceny",
        "dostawcy (oddzieleni „, ”)",
        "odbiorcy (oddzieleni „, ”)",
    ]
    sheets = next(row for row in rows if row[2] == "sheets")
    plain = next(row for row in rows if row[2] == "plain")
    assert sheets[13:] == ["42,5", "PLN", "sheet", "Huta Sp. z o.o.", "Stocznia SA, Meble SA"]
    assert plain[13:] == ["", "", "", "", ""]


async def test_feed_summary_follows_link_language(open_client: httpx.AsyncClient) -> None:
    polish_page = await open_client.get("/offers/c1/acme/cnc")
    english_page = await open_client.get("/offers/c1/acme/cnc", params={"lang": "en"})
    polish_link = _feed_link(polish_page.text)
    english_link = _feed_link(english_page.text)

    polish = await open_client.get(polish_link)
    english = await open_client.get(english_link)
    unmarked = await open_client.get(polish_link.replace("&lang=pl", ""))

    assert polish_link.endswith("&lang=pl")
    assert english_link.endswith("&lang=en")
    assert "SUMMARY:Wolne: Zeta DMU (acme)" in _unfold(polish.text)
    assert "SUMMARY:Free: Zeta DMU (acme)" in _unfold(english.text)
    assert "SUMMARY:Wolne: Zeta DMU (acme)" in _unfold(unmarked.text)


def _feed_link(html: str) -> str:
    link = html.split('id="ics-link"')[0].rsplit('href="', 1)[1].split('"', 1)[0]
    return link.replace("&amp;", "&")


@pytest.mark.parametrize(
    ("language", "delimiter", "kind", "state"),
    [("pl", ";", "maszyna", "nie pracuje"), ("en", ",", "machine", "not executing")],
)
async def test_csv_words_kind_and_state(
    open_client: httpx.AsyncClient, language: str, delimiter: str, kind: str, state: str
) -> None:
    response = await open_client.get(
        "/export/search.csv", params={"member": "acme", "kind": "machine", "lang": language}
    )

    rows = _rows(response.content, delimiter)
    cnc = next(row for row in rows if row[2] == "cnc")
    assert cnc[:3] == ["c1", "acme", "cnc"]
    assert cnc[4] == kind
    assert cnc[5] == "5-axis-milling, turning"
    assert cnc[6] == state


@pytest.mark.parametrize(
    ("language", "delimiter", "state"), [("pl", ";", "nie pracuje"), ("en", ",", "not executing")]
)
async def test_history_csv_words_state(
    storage: Storage, language: str, delimiter: str, state: str
) -> None:
    storage.store_offer(machine_offer("c1", "acme", "cnc"), T0)
    async with client_for(storage) as client:
        response = await client.get("/offers/c1/acme/cnc/history.csv", params={"lang": language})

    rows = _rows(response.content, delimiter)
    assert rows[1][2] == state
