"""The search, offer, member and coordinator pages through a real ASGI client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from server.api import create_app
from server.status import ServerStatus
from server.storage import Storage
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, hours, machine_offer, member_status
from tests.server.search_helpers import add_profile, fill_search_cluster

NOW = T0 + hours(1)
STATUS = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)


def client_for(storage: Storage, tokens: TokenStore | None = None) -> httpx.AsyncClient:
    app = create_app(storage, STATUS, tokens=tokens, clock=lambda: NOW)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kooperant")


@pytest.fixture
async def pages(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    fill_search_cluster(storage)
    storage.store_status(member_status("c1", "acme"), T0)
    async with client_for(storage) as client:
        yield client


def result_ids(html: str) -> list[str]:
    """Return the resource ids of the result table, in order."""
    found = []
    for part in html.split('class="offer-link"')[1:]:
        found.append(part.split('<span class="name">', 1)[1].split(" ", 1)[0].split("<", 1)[0])
    return found


async def test_search_page_lists_all_offers(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/")

    assert response.status_code == 200
    assert '<html lang="pl">' in response.text
    assert result_ids(response.text) == ["cnc", "hall", "laser", "racks", "press"]
    assert "Znalezione oferty: 5" in response.text
    assert '<option value="laser-cutting">' in response.text
    assert 'class="timeline-bar"' in response.text
    assert "połączony" in response.text
    assert "Maszyny: wolne godziny w wybranych dniach" in response.text


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "storage"}, ["hall", "racks"]),
        ({"capability": "laser-cutting"}, ["laser"]),
        ({"capability": "turning, 5-axis-milling"}, ["cnc"]),
        ({"region": "slaskie"}, ["laser", "racks"]),
        ({"city": "gdańsk"}, ["cnc", "hall"]),
        ({"from": "2026-12-09", "to": "2026-12-10"}, ["laser"]),
        # The laser has 30 h over its horizon, 13 h of them on 10 December.
        ({"from": "2026-12-10", "to": "2026-12-10", "min_free": "13"}, ["laser"]),
        ({"from": "2026-12-10", "to": "2026-12-10", "min_free": "14"}, []),
        ({"min_free": "12,5", "quantity": "floor_area"}, ["racks"]),
        ({"sort": "name"}, ["hall", "laser", "racks", "press", "cnc"]),
    ],
)
async def test_search_page_filters(
    pages: httpx.AsyncClient, params: dict[str, str], expected: list[str]
) -> None:
    response = await pages.get("/", params=params)

    assert response.status_code == 200
    assert result_ids(response.text) == expected


async def test_search_page_paginates(storage: Storage) -> None:
    for index in range(30):
        storage.store_offer(machine_offer("c1", "acme", f"m{index:02d}"), T0)
    async with client_for(storage) as client:
        first = await client.get("/")
        second = await client.get("/", params={"page": "2"})

    assert len(result_ids(first.text)) == 25
    assert result_ids(second.text) == [f"m{index:02d}" for index in range(25, 30)]
    assert 'href="?page=2&amp;lang=pl" rel="next"' in first.text
    assert "Strona 2 z 2" in second.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "Data „2026-13-01” w polu „Wolne od dnia” jest nieprawidłowa"),
        ({"from": "2026-12-10", "to": "2026-12-09"}, "Data końcowa 2026-12-09 jest wcześniejsza"),
        ({"kind": "spaceship"}, "Nieznany rodzaj zasobu „spaceship”; dozwolone: machine, "),
        ({"region": "bavaria"}, "Nieznane województwo „bavaria”; podaj nazwę albo kod: "),
        ({"region": "bavaria"}, "dolnoslaskie, kujawsko-pomorskie, lodzkie,"),
        ({"min_free": "-1"}, "Minimalna ilość „-1” musi być liczbą"),
        ({"min_free": "nan"}, "Minimalna ilość „nan” musi być liczbą"),
        ({"page": "99999999999999999999"}, "Numer strony „99999999999999999999”"),
        ({"page": "0"}, "Numer strony „0”"),
        ({"sort": "price"}, "Nieznany porządek sortowania „price”; dozwolone: name, member, "),
        ({"city": "x" * 300}, "Pole „Miejscowość” jest dłuższe niż 200 znaków"),
        ({"capability": "x" * 300}, "Pole „Możliwości” jest dłuższe"),
        ({"to": "2026-02-30"}, "w polu „do dnia” jest nieprawidłowa"),
    ],
)
async def test_search_page_bad_parameter(
    pages: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await pages.get("/", params=params)

    assert response.status_code == 400
    assert message in response.text
    assert 'id="search-errors"' in response.text


async def test_search_page_error_in_english(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/", params={"from": "tomorrow", "lang": "en"})

    assert response.status_code == 400
    assert (
        "The date &#39;tomorrow&#39; in the field &#39;Free from&#39; is invalid" in response.text
    )


async def test_offer_page_shows_timeline_and_history(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/offers/c1/acme/cnc", params={"lang": "en"})

    html = response.text
    assert response.status_code == 200
    assert 'id="offer-timeline"' in html
    assert 'class="now"' in html
    assert "not executing" in html
    assert "5-axis-milling, turning" in html
    assert "Versions received: 1" in html
    assert 'href="/offers/c1/acme/cnc.ics?sig=' in html
    assert ">08.12<" not in html
    assert ">12-08<" in html


async def test_offer_page_unknown_and_hidden_alike(storage: Storage, tmp_path: Path) -> None:
    fill_search_cluster(storage)
    storage.store_offer(replace(machine_offer("c1", "beta", "secret"), audience=("gamma",)), T0)
    tokens = _tokens(tmp_path)
    async with client_for(storage, tokens) as client:
        headers = {"Authorization": "Bearer token-acme"}
        hidden = await client.get("/offers/c1/beta/secret", headers=headers)
        missing = await client.get("/offers/c1/beta/nothing", headers=headers)
        allowed = await client.get(
            "/offers/c1/beta/secret", headers={"Authorization": "Bearer token-gamma"}
        )

    assert hidden.status_code == 404
    assert missing.status_code == 404
    assert hidden.text.replace("secret", "nothing") == missing.text
    assert allowed.status_code == 200


async def test_members_page_lists_profiles(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/members")

    assert response.status_code == 200
    assert "Firma acme" in response.text
    assert "pomorskie" in response.text
    assert "Katowice" in response.text
    assert "gamma" in response.text


async def test_member_page_shows_visible_offers(storage: Storage, tmp_path: Path) -> None:
    fill_search_cluster(storage)
    add_profile(storage, "c1", "hidden", contact_email="biuro@example.pl")
    storage.store_offer(
        replace(
            machine_offer("c1", "hidden", "h1", capabilities=("secret-skill",)), audience=("x",)
        ),
        T0,
    )
    async with client_for(storage, _tokens(tmp_path)) as client:
        headers = {"Authorization": "Bearer token-acme"}
        beta = await client.get("/members/c1/beta", headers=headers)
        hidden = await client.get("/members/c1/hidden", headers=headers)
        nobody = await client.get("/members/c1/nobody", headers=headers)

    assert beta.status_code == 200
    assert "cold-storage, laser-cutting" in beta.text
    assert "Beta laser" in beta.text
    assert hidden.status_code == 200
    assert "biuro@example.pl" in hidden.text
    assert "secret-skill" not in hidden.text
    assert "h1" not in hidden.text.split('id="member-capabilities"')[1]
    assert nobody.status_code == 404


async def test_coordinator_open_mode(storage: Storage) -> None:
    fill_search_cluster(storage)
    storage.store_rejected("kooperant/v1/c1/acme/offers/x", b"<script>x</script>", "bad", T0)
    storage.store_status(member_status("c1", "beta"), T0)
    async with client_for(storage) as client:
        response = await client.get("/coordinator", params={"lang": "en"})

    html = response.text
    assert response.status_code == 200
    assert 'id="capacity-plot"' in html
    assert '<strong id="stat-online">1</strong>' in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x" not in html
    # cnc 3 h + 2 h after NOW, laser 30 h; the press shows a band, which is not summed.
    assert '<strong id="stat-free-week">35.0 h</strong>' in html


async def test_coordinator_forbidden_for_member(storage: Storage, tmp_path: Path) -> None:
    async with client_for(storage, _tokens(tmp_path)) as client:
        response = await client.get("/coordinator", headers={"Authorization": "Bearer token-acme"})
        anonymous = await client.get("/coordinator")

    assert response.status_code == 403
    assert "tylko dla koordynatora" in response.text
    assert anonymous.status_code == 303


def _tokens(tmp_path: Path) -> TokenStore:
    path = tmp_path / "tokens.yaml"
    lines = [
        f"- {{cluster: c1, member: {member}, token_sha256: {hash_token(f'token-{member}')}}}\n"
        for member in ("acme", "beta", "gamma")
    ]
    path.write_text("".join(lines))
    return TokenStore.load(path)


@pytest.mark.parametrize(
    ("params", "value"),
    [
        ({"to": "9999-12-31"}, "9999-12-31"),
        ({"from": "0001-01-01"}, "0001-01-01"),
        ({"from": "1999-12-31"}, "1999-12-31"),
        ({"to": "2101-01-01"}, "2101-01-01"),
    ],
)
async def test_search_page_edge_dates(
    pages: httpx.AsyncClient, params: dict[str, str], value: str
) -> None:
    response = await pages.get("/", params=params)

    assert response.status_code == 400
    assert f"Data „{value}”" in response.text
    assert "poza dozwolonym zakresem: od 2000-01-01 do 2100-12-31" in response.text


async def test_search_page_range_limits_accepted(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/", params={"from": "2000-01-01", "to": "2100-12-31"})

    assert response.status_code == 200


@pytest.mark.parametrize("region", ["śląskie", "Śląskie", "Silesian", "silesian", "slaskie"])
async def test_search_page_region_by_name(pages: httpx.AsyncClient, region: str) -> None:
    response = await pages.get("/", params={"region": region})

    assert response.status_code == 200
    assert result_ids(response.text) == ["laser", "racks"]
    assert '<option value="slaskie" selected' in response.text


async def test_search_page_errors_list_allowed_in_english(pages: httpx.AsyncClient) -> None:
    response = await pages.get(
        "/", params={"kind": "robot", "sort": "price", "city": "x" * 300, "lang": "en"}
    )

    assert response.status_code == 400
    assert "Unknown resource kind &#39;robot&#39;; use one of: machine, " in response.text
    assert "Unknown sort order &#39;price&#39;; use one of: name, member, kind, " in response.text
    assert "The field &#39;City&#39; is longer than 200 characters" in response.text


@pytest.mark.parametrize("value", ["abc", "-1", "0", "10001"])
async def test_offer_page_bad_history_page(pages: httpx.AsyncClient, value: str) -> None:
    response = await pages.get("/offers/c1/acme/cnc", params={"history_page": value})

    assert response.status_code == 400
    assert f"Numer strony „{value}”" in response.text
    assert "Nieprawidłowy adres strony" in response.text


async def test_search_page_beyond_last_page(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/", params={"page": "1000", "kind": "machine"})

    assert response.status_code == 200
    assert "Strona 1000 jest za ostatnią stroną wyników (1)." in response.text
    assert 'href="?kind=machine&amp;lang=pl">Przejdź do ostatniej strony' in response.text
    assert "Żadna oferta nie spełnia" not in response.text


async def test_search_page_empty_result_message(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/", params={"city": "Nowhere"})

    assert "Żadna oferta nie spełnia tych warunków." in response.text
    assert 'id="beyond-last-page"' not in response.text


async def test_offer_page_state_without_since(storage: Storage) -> None:
    offer = replace(machine_offer("c1", "acme", "nosince"), state_since=None)
    storage.store_offer(offer, T0)
    async with client_for(storage) as client:
        response = await client.get("/offers/c1/acme/nosince")

    state = response.text.split('id="offer-state">', 1)[1].split("</dd>", 1)[0]
    assert state == "nie pracuje"


async def test_offer_timeline_labels_inside_width(storage: Storage) -> None:
    storage.store_offer(machine_offer("c1", "acme", "cnc"), T0)
    async with client_for(storage) as client:
        response = await client.get("/offers/c1/acme/cnc")

    svg = response.text.split('id="offer-timeline">', 1)[1].split("</svg>", 1)[0]
    labels = [part.split("</text>", 1)[0] for part in svg.split("<text ")[1:]]
    # 11-unit glyphs are about 7 units wide, so this estimates where each label ends.
    assert any('text-anchor="end"' in label for label in labels)
    for label in labels:
        attributes, text = label.split(">", 1)
        x = float(attributes.split('x="', 1)[1].split('"', 1)[0])
        if 'text-anchor="end"' in attributes:
            assert x - 7 * len(text) >= 0, label
        else:
            assert x + 7 * len(text) <= 1000, label


@pytest.mark.parametrize(
    ("params", "language", "text"),
    [
        (
            [("min_free", "1"), ("min_free", "1000")],
            "pl",
            "Parametr „min_free” występuje w adresie 2 razy (1, 1000); podaj jedną wartość.",
        ),
        (
            [("sort", "name"), ("sort", "free")],
            "en",
            "The parameter &#39;sort&#39; is given 2 times in the address (name, free)",
        ),
        ([("page", "1"), ("page", "1")], "pl", "Parametr „page” występuje w adresie 2 razy"),
        ([("capability", "a"), ("capability", "b")], "en", "parameter &#39;capability&#39;"),
    ],
)
async def test_search_page_repeated_parameter(
    pages: httpx.AsyncClient, params: list[tuple[str, str]], language: str, text: str
) -> None:
    response = await pages.get("/", params=[*params, ("lang", language)])

    assert response.status_code == 400
    assert 'id="search-errors"' in response.text
    assert text in response.text


async def test_search_page_repeatable_parameters(pages: httpx.AsyncClient) -> None:
    params = [
        ("kind", "machine"),
        ("kind", "storage"),
        ("region", "mazowieckie"),
        ("region", "slaskie"),
    ]
    response = await pages.get("/", params=params)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("params", "text", "link"),
    [
        (
            {"city": "Nowhere", "page": "2"},
            "Strona 2 jest za ostatnią stroną wyników (1).",
            'href="?city=Nowhere&amp;lang=pl">Przejdź do ostatniej strony',
        ),
        (
            {"kind": "machine", "page": "3", "lang": "en"},
            "Page 3 is beyond the last page of the results (1).",
            'href="?kind=machine&amp;lang=en">Go to the last page',
        ),
    ],
)
async def test_search_page_beyond_last_no_pager(
    pages: httpx.AsyncClient, params: dict[str, str], text: str, link: str
) -> None:
    response = await pages.get("/", params=params)

    assert response.status_code == 200
    assert text in response.text
    assert link in response.text
    assert f"Strona {params['page']} z 1" not in response.text
    assert f"Page {params['page']} of 1" not in response.text
    assert "Żadna oferta nie spełnia" not in response.text


@pytest.mark.parametrize(
    ("language", "text", "link"),
    [
        (
            "pl",
            "Strona 5 jest za ostatnią stroną historii (1).",
            'href="?history_page=1&amp;lang=pl">Przejdź do ostatniej strony',
        ),
        (
            "en",
            "Page 5 is beyond the last page of the history (1).",
            'href="?history_page=1&amp;lang=en">Go to the last page',
        ),
    ],
)
async def test_offer_history_beyond_last_page(
    pages: httpx.AsyncClient, language: str, text: str, link: str
) -> None:
    response = await pages.get(
        "/offers/c1/acme/cnc", params={"history_page": "5", "lang": language}
    )

    assert response.status_code == 200
    assert text in response.text
    assert link in response.text
    assert "Strona 5 z 1" not in response.text
    assert "Page 5 of 1" not in response.text
    assert 'id="history"' not in response.text


@pytest.mark.parametrize(
    ("language", "size", "hint"),
    [
        ("pl", "9000 B", "Tabela pokazuje pierwsze 200 znaków każdej treści. Do 1000 znaków"),
        ("en", "9000 B", "The table shows the first 200 characters of each payload."),
    ],
)
async def test_coordinator_rejected_payload_excerpt(
    storage: Storage, language: str, size: str, hint: str
) -> None:
    payload = "a" * 199 + "b" + "c" * 8800
    storage.store_rejected("kooperant/v1/c1/acme/offers/x", payload.encode(), "bad", T0)
    async with client_for(storage) as client:
        response = await client.get("/coordinator", params={"lang": language})

    cell = response.text.split('<td class="payload">', 1)[1].split("</td>", 1)[0]
    assert cell.startswith("a" * 199 + "b…")
    assert "c" not in cell.split("<br>")[0]
    assert size in cell
    assert hint in response.text
    assert 'href="/api/v1/rejected-messages"' in response.text


@pytest.mark.parametrize(
    ("language", "title", "help_text", "bar_title"),
    [
        (
            "pl",
            "Wolne godziny maszyn w horyzoncie ofert, stan na koniec dnia (ostatnie 30 dni)",
            "w całym swoim horyzoncie (zwykle 14 dni naprzód)",
            "wolnych w horyzoncie ofert (stan na koniec dnia)</title>",
        ),
        (
            "en",
            "Free machine hours over the offers&#39; horizon, as of each day&#39;s end",
            "over its whole horizon (usually 14 days ahead)",
            "free over the offers&#39; horizon (as of the end of the day)</title>",
        ),
    ],
)
async def test_coordinator_capacity_wording(
    storage: Storage, language: str, title: str, help_text: str, bar_title: str
) -> None:
    fill_search_cluster(storage)
    async with client_for(storage) as client:
        response = await client.get("/coordinator", params={"lang": language})

    assert f"<h2>{title}" in response.text
    assert help_text in response.text
    assert bar_title in response.text
