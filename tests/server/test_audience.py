"""Audience isolation: a member's token returns only the offers meant for that member.

Every endpoint is checked for every caller, on SQLite and PostgreSQL. The expected views are
written out by hand below, not computed with the server's rules, and each caller also has offers
it must see, so a filter that hid everything would fail too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from kooperant.intervals import Interval
from kooperant.protocol import Offer, offer_topic
from server.api import create_app
from server.status import ServerStatus
from server.storage import Storage, Viewer
from server.tokens import TokenStore, hash_token
from tests.server.helpers import T0, hours, machine_offer, storage_offer

LATER = (Interval(T0 + hours(48), T0 + hours(50)),)


def _offer(cluster: str, member: str, resource: str, **changes: Any) -> Offer:
    base = machine_offer(cluster, member, resource, name=f"name-of-{resource}")
    return replace(base, **changes)


OFFERS = {
    "a-public": replace(
        storage_offer("c1", "acme", "a-public"), name="name-of-a-public", capabilities=("milling",)
    ),
    "a-own-group": _offer("c1", "acme", "a-own-group", audience=("delta",)),
    "b-public": _offer("c1", "beta", "b-public", capabilities=("milling", "turning")),
    "b-secret": _offer(
        "c1",
        "beta",
        "b-secret",
        capabilities=("milling",),
        free_intervals=LATER,
        free_hours=2.0,
        audience=("delta", "gamma"),
    ),
    "b-expired": _offer("c1", "beta", "b-expired", expires_at=T0 - hours(1)),
    "h-secret": _offer("c1", "hidden", "h-secret", audience=("delta",)),
    "c2-public": _offer("c2", "beta", "c2-public"),
    "c2-secret": _offer("c2", "beta", "c2-secret", audience=("delta",)),
}


@dataclass(frozen=True)
class Caller:
    name: str
    token: str | None
    visible: frozenset[str]
    own_topic_prefix: str | None


CALLERS = {
    "acme": Caller(
        "acme", "token-c1-acme", frozenset({"a-public", "a-own-group", "b-public"}), "c1/acme"
    ),
    "beta": Caller(
        "beta", "token-c1-beta", frozenset({"a-public", "b-public", "b-secret"}), "c1/beta"
    ),
    "delta": Caller(
        "delta",
        "token-c1-delta",
        frozenset({"a-public", "a-own-group", "b-public", "b-secret", "h-secret"}),
        "c1/delta",
    ),
    # Same member ids as in c1, so only the cluster differs.
    "c2-delta": Caller(
        "c2-delta", "token-c2-delta", frozenset({"c2-public", "c2-secret"}), "c2/delta"
    ),
    "c2-acme": Caller("c2-acme", "token-c2-acme", frozenset({"c2-public"}), "c2/acme"),
}
ANONYMOUS = Caller("anonymous", None, frozenset({"a-public", "b-public", "c2-public"}), None)
TOKEN_OWNERS = {
    "token-c1-acme": ("c1", "acme"),
    "token-c1-beta": ("c1", "beta"),
    "token-c1-delta": ("c1", "delta"),
    "token-c2-delta": ("c2", "delta"),
    "token-c2-acme": ("c2", "acme"),
}
REJECTED_TOPICS = (
    offer_topic("c1", "acme", "broken"),
    offer_topic("c1", "beta", "b-secret"),
    offer_topic("c2", "delta", "broken"),
)


def forbidden_words(caller: Caller) -> list[str]:
    """Return the ids and names of every offer ``caller`` must not see."""
    hidden = set(OFFERS) - caller.visible
    return sorted(hidden) + sorted(f"name-of-{resource}" for resource in hidden)


def fill(storage: Storage) -> None:
    for offer in OFFERS.values():
        storage.store_offer(offer, T0 - hours(2))
    for topic in REJECTED_TOPICS:
        storage.store_rejected(topic, b"{}", "unsupported schema", T0 - hours(1))


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    lines = [
        f"- {{cluster: {cluster}, member: {member}, token_sha256: {hash_token(token)}}}\n"
        for token, (cluster, member) in TOKEN_OWNERS.items()
    ]
    path.write_text("".join(lines))
    return path


def _client(storage: Storage, tokens: TokenStore | None) -> httpx.AsyncClient:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, tokens=tokens, clock=lambda: T0)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kooperant")


@pytest.fixture
async def secured(storage: Storage, tokens_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    fill(storage)
    async with _client(storage, TokenStore.load(tokens_file)) as client:
        yield client


@pytest.fixture
async def open_server(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    fill(storage)
    async with _client(storage, None) as client:
        yield client


def headers(caller: Caller) -> dict[str, str]:
    return {"Authorization": f"Bearer {caller.token}"} if caller.token else {}


def overlaps(offer: Offer, start: datetime, end: datetime) -> bool:
    return any(item.start < end and item.end > start for item in offer.free_intervals or ())


# Filters of GET /api/v1/resources and which offers each keeps, checked on the offer itself.
FILTERS: dict[str, tuple[dict[str, Any], Any]] = {
    "none": ({}, lambda offer: True),
    "kind": ({"kind": "machine"}, lambda offer: offer.kind == "machine"),
    "capability": (
        {"capability": "milling"},
        lambda offer: "milling" in (offer.capabilities or ()),
    ),
    "member": ({"member": "beta"}, lambda offer: offer.member == "beta"),
    "window": (
        {"from": (T0 + hours(47)).isoformat(), "to": (T0 + hours(51)).isoformat()},
        lambda offer: overlaps(offer, T0 + hours(47), T0 + hours(51)),
    ),
    "open-window": (
        {"from": (T0 + hours(1)).isoformat()},
        lambda offer: overlaps(offer, T0 + hours(1), T0 + hours(10_000)),
    ),
}


def expected_ids(caller: Caller, keep: Any) -> list[str]:
    kept = [offer for name, offer in OFFERS.items() if name in caller.visible and keep(offer)]
    kept.sort(key=lambda offer: (offer.cluster, offer.member, offer.resource))
    return [offer.resource for offer in kept]


def _cases() -> list[tuple[Caller, str]]:
    return [(caller, name) for caller in CALLERS.values() for name in FILTERS]


@pytest.mark.parametrize(
    ("caller", "filter_name"), _cases(), ids=[f"{c.name}-{f}" for c, f in _cases()]
)
async def test_resources_filter_keeps_audience(
    secured: httpx.AsyncClient, caller: Caller, filter_name: str
) -> None:
    params, keep = FILTERS[filter_name]

    response = await secured.get("/api/v1/resources", params=params, headers=headers(caller))

    body = response.json()
    expected = expected_ids(caller, keep)
    assert [item["resource"] for item in body["items"]] == expected
    assert body["total"] == len(expected)
    for word in forbidden_words(caller):
        assert word not in response.text


@pytest.mark.parametrize("caller", list(CALLERS.values()), ids=list(CALLERS))
async def test_resources_paging_keeps_audience(secured: httpx.AsyncClient, caller: Caller) -> None:
    expected = expected_ids(caller, lambda offer: True)
    pages = []

    for offset in range(len(OFFERS)):
        response = await secured.get(
            "/api/v1/resources", params={"limit": 1, "offset": offset}, headers=headers(caller)
        )
        pages.append(response.json())
        for word in forbidden_words(caller):
            assert word not in response.text

    assert [page["total"] for page in pages] == [len(expected)] * len(OFFERS)
    assert [item["resource"] for page in pages for item in page["items"]] == expected


def expected_members(caller: Caller) -> list[tuple[str, str, int]]:
    """Return the members listed for ``caller`` with visible offer counts, the caller included."""
    counts: dict[tuple[str, str], int] = {}
    if caller.own_topic_prefix is not None:
        cluster, member = caller.own_topic_prefix.split("/")
        counts[(cluster, member)] = 0
    for name in caller.visible:
        offer = OFFERS[name]
        counts[(offer.cluster, offer.member)] = counts.get((offer.cluster, offer.member), 0) + 1
    return sorted((cluster, member, count) for (cluster, member), count in counts.items())


@pytest.mark.parametrize("caller", list(CALLERS.values()), ids=list(CALLERS))
async def test_members_count_visible_offers(secured: httpx.AsyncClient, caller: Caller) -> None:
    response = await secured.get("/api/v1/members", headers=headers(caller))

    listed = [
        (item["cluster"], item["member"], item["resources"]) for item in response.json()["items"]
    ]
    assert listed == expected_members(caller)
    if caller.name != "delta":
        assert ("c1", "hidden") not in [(cluster, member) for cluster, member, _ in listed]


async def test_members_list_caller_without_offers(
    secured: httpx.AsyncClient, storage: Storage
) -> None:
    storage.store_offer(_offer("c1", "delta", "d-expired", expires_at=T0 - hours(1)), T0)

    response = await secured.get("/api/v1/members", headers=headers(CALLERS["delta"]))
    others = await secured.get("/api/v1/members", headers=headers(CALLERS["acme"]))

    assert ("c1", "delta", 0) in [
        (item["cluster"], item["member"], item["resources"]) for item in response.json()["items"]
    ]
    assert "delta" not in [item["member"] for item in others.json()["items"]]


@pytest.mark.parametrize("caller", [CALLERS["delta"], CALLERS["c2-acme"]], ids=["delta", "c2-acme"])
async def test_members_list_never_seen_caller(secured: httpx.AsyncClient, caller: Caller) -> None:
    response = await secured.get("/api/v1/members", headers=headers(caller))

    cluster, member = (caller.own_topic_prefix or "").split("/")
    own = [
        item
        for item in response.json()["items"]
        if (item["cluster"], item["member"]) == (cluster, member)
    ]
    assert own == [
        {
            "cluster": cluster,
            "member": member,
            "resources": 0,
            "first_seen": None,
            "last_seen": None,
            "status": None,
            "status_since": None,
            "registered": False,
        }
    ]


@pytest.mark.parametrize("caller", list(CALLERS.values()), ids=list(CALLERS))
async def test_rejected_messages_only_own_topics(
    secured: httpx.AsyncClient, caller: Caller
) -> None:
    response = await secured.get("/api/v1/rejected-messages", headers=headers(caller))

    topics = [item["topic"] for item in response.json()["items"]]
    expected = [
        topic
        for topic in REJECTED_TOPICS
        if topic.startswith(f"kooperant/v1/{caller.own_topic_prefix}/")
    ]
    assert sorted(topics) == sorted(expected)


@pytest.mark.parametrize("caller", list(CALLERS.values()), ids=list(CALLERS))
async def test_dashboard_shows_visible_offers_only(
    secured: httpx.AsyncClient, caller: Caller
) -> None:
    response = await secured.get("/", headers=headers(caller))

    assert response.status_code == 200
    for resource in caller.visible:
        assert resource in response.text
    for word in forbidden_words(caller):
        assert word not in response.text


@pytest.mark.parametrize("caller", [*CALLERS.values(), ANONYMOUS], ids=[*CALLERS, "anonymous"])
async def test_healthz_reveals_no_offers(secured: httpx.AsyncClient, caller: Caller) -> None:
    response = await secured.get("/healthz", headers=headers(caller))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "connected"}


@pytest.mark.parametrize(
    "path", ["/api/v1/resources", "/api/v1/members", "/api/v1/rejected-messages"]
)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer token-unknown", "Bearer ", "Basic dG9rZW4tYzEtYWNtZTo=", "token-c1-acme"],
)
async def test_api_without_valid_token_is_401(
    secured: httpx.AsyncClient, path: str, authorization: str | None
) -> None:
    sent = {"Authorization": authorization} if authorization is not None else {}

    response = await secured.get(path, headers=sent, params={"limit": 5})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    for word in OFFERS:
        assert word not in response.text


async def test_bad_parameter_without_token_is_401(secured: httpx.AsyncClient) -> None:
    response = await secured.get("/api/v1/resources", params={"limit": "0"})

    assert response.status_code == 401


async def test_dashboard_without_token_redirects(secured: httpx.AsyncClient) -> None:
    response = await secured.get("/", params={"capability": "milling"})

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fcapability%3Dmilling"
    for word in OFFERS:
        assert word not in response.text


@pytest.mark.parametrize("filter_name", list(FILTERS))
async def test_open_server_shows_cluster_wide_only(
    open_server: httpx.AsyncClient, filter_name: str
) -> None:
    params, keep = FILTERS[filter_name]

    response = await open_server.get("/api/v1/resources", params=params)

    expected = expected_ids(ANONYMOUS, keep)
    assert [item["resource"] for item in response.json()["items"]] == expected
    assert response.json()["total"] == len(expected)
    for word in forbidden_words(ANONYMOUS):
        assert word not in response.text


async def test_open_server_other_endpoints(open_server: httpx.AsyncClient) -> None:
    members = await open_server.get("/api/v1/members")
    rejected = await open_server.get("/api/v1/rejected-messages")
    dashboard = await open_server.get("/")

    assert [
        (item["cluster"], item["member"], item["resources"]) for item in members.json()["items"]
    ] == expected_members(ANONYMOUS)
    assert sorted(item["topic"] for item in rejected.json()["items"]) == sorted(REJECTED_TOPICS)
    assert dashboard.status_code == 200
    for word in forbidden_words(ANONYMOUS):
        assert word not in dashboard.text
    assert "audience" not in members.text


def test_rejected_prefix_escapes_like_wildcards(storage: Storage) -> None:
    storage.store_rejected(offer_topic("c1", "aXb", "x"), b"{}", "invalid", T0)
    storage.store_rejected(offer_topic("c1", "a_b", "x"), b"{}", "invalid", T0)

    listed = storage.list_rejected(viewer=Viewer("c1", "a_b"))

    assert [item.topic for item in listed] == [offer_topic("c1", "a_b", "x")]
