"""Password sign-in of the dashboard: sessions, CSRF, rate limit, forced change, coordinator pages.

Each test runs the real application through httpx's ASGI transport on SQLite and PostgreSQL, with
a clock the test moves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx
import pytest

from server.api import create_app
from server.auth import ACCOUNTS_RECHECK_SECONDS, SESSION_COOKIE, Authenticator
from server.login_limits import (
    MAX_ADDRESS_FAILURES,
    MAX_USER_ADDRESS_FAILURES,
    MAX_USER_FAILURES,
    LimitKey,
    LoginLimiter,
    sign_in_keys,
)
from server.passwords import hash_password
from server.status import ServerStatus
from server.storage import Storage
from server.storage.accounts import SESSION_IDLE_TIMEOUT
from tests.server.helpers import T0, machine_offer

COORDINATOR_PASSWORD = "coordinator password 1"
BETA_PASSWORD = "beta's own password"
BASE_URL = "http://kooperant"


@dataclass
class Clocks:
    now: datetime = T0
    seconds: float = 0.0

    def advance(self, delta: timedelta) -> None:
        self.now += delta
        self.seconds += delta.total_seconds()


@dataclass
class Site:
    client: httpx.AsyncClient
    storage: Storage
    clocks: Clocks


def fill(storage: Storage) -> None:
    storage.store_offer(machine_offer("c1", "acme", "public-cnc"), T0)
    storage.store_offer(replace(machine_offer("c1", "acme", "group-cnc"), audience=("beta",)), T0)
    storage.store_offer(replace(machine_offer("c1", "acme", "gamma-cnc"), audience=("gamma",)), T0)
    storage.register_member("c1", "beta", T0)
    storage.create_user(
        username="coord",
        password_hash=hash_password(COORDINATOR_PASSWORD),
        role="coordinator",
        cluster="c1",
        member=None,
        display_name="Anna Koordynator",
        must_change_password=False,
        now=T0,
    )
    storage.create_user(
        username="beta",
        password_hash=hash_password(BETA_PASSWORD),
        role="member",
        cluster="c1",
        member="beta",
        display_name="Beta sp. z o.o.",
        must_change_password=False,
        now=T0,
    )


def make_client(
    storage: Storage,
    clocks: Clocks,
    address: str = "127.0.0.1",
    limiter: LoginLimiter | None = None,
) -> httpx.AsyncClient:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(
        storage,
        status,
        clock=lambda: clocks.now,
        login_limiter=limiter or LoginLimiter(clock=lambda: clocks.seconds),
    )
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def site(storage: Storage) -> AsyncIterator[Site]:
    fill(storage)
    clocks = Clocks()
    async with make_client(storage, clocks) as client:
        yield Site(client, storage, clocks)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str, next_path: str = "/"
) -> httpx.Response:
    return await client.post(
        "/login", data={"username": username, "password": password, "next": next_path}
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


async def csrf_token(client: httpx.AsyncClient) -> str:
    response = await client.get("/account/password")
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


async def test_sign_in_success_sets_cookie(site: Site) -> None:
    response = await sign_in(site.client, "BETA", BETA_PASSWORD, "/?lang=en")

    cookie = response.headers["set-cookie"]
    assert response.status_code == 303
    assert response.headers["location"] == "/?lang=en"
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie


async def test_sign_in_https_cookie_secure(storage: Storage) -> None:
    fill(storage)
    client = make_client(storage, Clocks())
    client.base_url = httpx.URL("https://kooperant")
    async with client:
        response = await sign_in(client, "beta", BETA_PASSWORD)

    assert "Secure" in response.headers["set-cookie"]


async def test_signed_in_sees_audience(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)

    page = await site.client.get("/")

    assert page.status_code == 200
    assert "group-cnc" in page.text
    assert "public-cnc" in page.text
    assert "gamma-cnc" not in page.text


@pytest.mark.parametrize(
    ("username", "password"),
    [("beta", "wrong password!"), ("nobody", BETA_PASSWORD), ("", ""), ("beta", "")],
)
async def test_sign_in_failure_401(site: Site, username: str, password: str) -> None:
    response = await sign_in(site.client, username, password)

    assert response.status_code == 401
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "Nieprawidłowa nazwa użytkownika lub hasło." in response.text


async def test_pages_redirect_to_sign_in(site: Site) -> None:
    page = await site.client.get("/?lang=en")
    form = await site.client.get("/login", params={"next": "/?lang=en"})

    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Flang%3Den"
    assert 'name="next" value="/?lang=en"' in form.text
    assert "public-cnc" not in form.text


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://x", "/\\evil.example", "evil", "javascript:alert(1)", ""],
)
async def test_open_redirect_rejected(site: Site, target: str) -> None:
    response = await sign_in(site.client, "beta", BETA_PASSWORD, target)

    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_logout_ends_session_server_side(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    session_id = site.client.cookies[SESSION_COOKIE]
    token = await csrf_token(site.client)

    response = await site.client.post("/logout", data={"csrf_token": token})
    site.client.cookies.set(SESSION_COOKIE, session_id)
    replayed = await site.client.get("/")

    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert site.storage.find_session(session_id, T0) is None
    assert replayed.status_code == 303


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
async def test_csrf_missing_or_wrong_403(site: Site, token: str | None) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    data = {} if token is None else {"csrf_token": token}

    responses = [
        await site.client.post("/logout", data=data),
        await site.client.post("/account/password", data=data),
        await site.client.post("/coordinator/members/new", data={**data, "member": "x1"}),
        await site.client.post("/coordinator/members/beta/reset-password", data=data),
        await site.client.post("/coordinator/members/beta/disable", data=data),
    ]

    assert [response.status_code for response in responses] == [403] * 5
    assert site.storage.find_session(site.client.cookies[SESSION_COOKIE], T0) is not None
    beta = site.storage.find_user("beta")
    assert beta is not None
    assert not beta.disabled


async def test_cross_origin_post_403(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)
    foreign = {"Origin": "https://evil.example"}

    login = await site.client.post(
        "/login", data={"username": "beta", "password": BETA_PASSWORD}, headers=foreign
    )
    disable = await site.client.post(
        "/coordinator/members/beta/disable", data={"csrf_token": token}, headers=foreign
    )

    assert login.status_code == 403
    assert disable.status_code == 403
    beta = site.storage.find_user("beta")
    assert beta is not None
    assert not beta.disabled


async def test_rate_limit_locks_then_resets(site: Site) -> None:
    for _ in range(MAX_USER_ADDRESS_FAILURES):
        failed = await sign_in(site.client, "beta", "wrong password!")
        assert failed.status_code == 401

    locked = await sign_in(site.client, "beta", BETA_PASSWORD)
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert SESSION_COOKIE not in locked.headers.get("set-cookie", "")

    site.clocks.advance(timedelta(minutes=15, seconds=1))
    accepted = await sign_in(site.client, "beta", BETA_PASSWORD)
    assert accepted.status_code == 303

    # The success cleared the counter of the user name and address, so one failure does not
    # lock it again.
    again = await sign_in(site.client, "beta", "wrong password!")
    assert again.status_code == 401


async def test_rate_limit_locks_only_attacker_address(storage: Storage) -> None:
    fill(storage)
    clocks = Clocks()
    limiter = LoginLimiter(clock=lambda: clocks.seconds)
    async with make_client(storage, clocks, "10.0.0.1", limiter) as attacker:
        for number in range(MAX_USER_ADDRESS_FAILURES):
            assert (await sign_in(attacker, "beta", f"wrong {number}")).status_code == 401
        attacker_locked = await sign_in(attacker, "Beta", BETA_PASSWORD)
        other_user = await sign_in(attacker, "coord", COORDINATOR_PASSWORD)

    async with make_client(storage, clocks, "10.0.1.1", limiter) as owner:
        owner_signed_in = await sign_in(owner, "beta", BETA_PASSWORD)

    assert attacker_locked.status_code == 429
    assert other_user.status_code == 303
    assert owner_signed_in.status_code == 303


async def test_rate_limit_per_address(storage: Storage) -> None:
    fill(storage)
    clocks = Clocks()
    limiter = LoginLimiter(clock=lambda: clocks.seconds)
    async with make_client(storage, clocks, "10.0.0.1", limiter) as client:
        for number in range(MAX_ADDRESS_FAILURES - 1):
            assert (await sign_in(client, f"guess{number}", "wrong password!")).status_code == 401
        below_limit = await sign_in(client, "coord", COORDINATOR_PASSWORD)
        assert (await sign_in(client, "guess-last", "wrong password!")).status_code == 401
        same_address = await sign_in(client, "coord", COORDINATOR_PASSWORD)
    async with make_client(storage, clocks, "10.0.0.2", limiter) as client:
        other_address = await sign_in(client, "coord", COORDINATOR_PASSWORD)

    assert below_limit.status_code == 303
    assert same_address.status_code == 429
    assert other_address.status_code == 303


def test_limiter_keys_independent() -> None:
    seconds = [0.0]
    limiter = LoginLimiter(clock=lambda: seconds[0])
    user_a = LimitKey("user:a", 2)
    ip_1 = LimitKey("address:1", 2)

    limiter.record_failure(ip_1, user_a)
    limiter.record_failure(LimitKey("address:2", 2), user_a)

    assert limiter.retry_after(user_a) == 15 * 60
    assert limiter.retry_after(ip_1) is None
    assert limiter.first_rejection(user_a)
    assert not limiter.first_rejection(user_a)
    seconds[0] = 15 * 60
    assert limiter.retry_after(user_a) is None


def test_limiter_user_wide_limit() -> None:
    limiter = LoginLimiter(clock=lambda: 0.0)
    for number in range(MAX_USER_FAILURES - 1):
        limiter.record_failure(*sign_in_keys("anna", f"10.0.{number // 250}.{number % 250}"))

    below_limit = limiter.retry_after(*sign_in_keys("Anna", "192.0.2.1"))
    limiter.record_failure(*sign_in_keys("anna", "10.1.0.1"))
    locked = limiter.retry_after(*sign_in_keys("Anna", "192.0.2.1"))
    other_user = limiter.retry_after(*sign_in_keys("coord", "192.0.2.1"))

    assert below_limit is None
    assert locked == 15 * 60
    assert other_user is None


async def test_must_change_redirects_everywhere(site: Site) -> None:
    site.storage.create_user(
        username="gamma",
        password_hash=hash_password("one-time password"),
        role="coordinator",
        cluster="c1",
        member=None,
        display_name=None,
        must_change_password=True,
        now=T0,
    )

    signed_in = await sign_in(site.client, "gamma", "one-time password", "/?lang=en")
    pages = [await site.client.get(path) for path in ("/", "/members", "/coordinator/members")]

    assert signed_in.headers["location"] == "/account/password"
    for page in pages:
        assert page.status_code == 303
        assert page.headers["location"] == "/account/password"
    form = await site.client.get("/account/password")
    assert form.status_code == 200
    assert 'id="password-forced"' in form.text


async def test_password_change_rules(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    token = await csrf_token(site.client)
    cases = [
        ("wrong current pw", "new password 12", "new password 12", "Obecne hasło jest"),
        (BETA_PASSWORD, "short", "short", "za krótkie"),
        (BETA_PASSWORD, "beta", "beta", "za krótkie"),
        (BETA_PASSWORD, "new password 12", "new password 13", "Powtórzone hasło"),
        (BETA_PASSWORD, BETA_PASSWORD, BETA_PASSWORD, "różnić się od obecnego"),
        (BETA_PASSWORD, " " * 12, " " * 12, "z samych spacji"),
        (BETA_PASSWORD, "betabetabeta", "betabetabeta", "za mało różnych znaków"),
        (BETA_PASSWORD, "my BETA password", "my BETA password", "nie może zawierać nazwy"),
    ]

    for current, new, repeated, expected in cases:
        response = await site.client.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current_password": current,
                "new_password": new,
                "new_password_repeat": repeated,
            },
        )
        assert response.status_code == 400, (current, new)
        assert expected in response.text


@pytest.mark.parametrize("character", ["\x00", "\t", "\x1b", "\x7f", "\x85"])
async def test_password_change_control_character(site: Site, character: str) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    token = await csrf_token(site.client)
    new_password = f"new{character}password 12"
    messages = {
        "en": "The password contains a control character",
        "pl": "Hasło zawiera znak sterujący",
    }

    for language, expected in messages.items():
        response = await site.client.post(
            f"/account/password?lang={language}",
            data={
                "csrf_token": token,
                "current_password": BETA_PASSWORD,
                "new_password": new_password,
                "new_password_repeat": new_password,
            },
        )
        assert response.status_code == 400
        assert expected in response.text
        assert "password 12" not in response.text

    site.client.cookies.clear()
    assert (await sign_in(site.client, "beta", new_password)).status_code == 401


@pytest.mark.parametrize(
    ("language", "label"), [("en", "Member accounts"), ("pl", "Konta członków")]
)
async def test_member_accounts_link_coordinator_only(site: Site, language: str, label: str) -> None:
    link = f'<a href="/coordinator/members">{label}</a>'
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    coordinator_page = await site.client.get(f"/?lang={language}")
    accounts_page = await site.client.get(f"/coordinator/members?lang={language}")

    async with make_client(site.storage, site.clocks) as member_client:
        await sign_in(member_client, "beta", BETA_PASSWORD)
        member_page = await member_client.get(f"/?lang={language}")

    assert link in coordinator_page.text
    assert (
        '<a href="/coordinator/members" class="active" aria-current="page">'
        f"{label}</a>" in accounts_page.text
    )
    assert member_page.status_code == 200
    assert 'href="/coordinator/members"' not in member_page.text
    assert label not in member_page.text


async def test_password_change_ends_other_sessions(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    old_session = site.client.cookies[SESSION_COOKIE]
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": BETA_PASSWORD,
            "new_password": "a brand new password",
            "new_password_repeat": "a brand new password",
        },
    )

    assert response.status_code == 303
    assert site.storage.find_session(old_session, T0) is None
    assert site.client.cookies[SESSION_COOKIE] != old_session
    assert (await site.client.get("/")).status_code == 200
    site.client.cookies.clear()
    assert (await sign_in(site.client, "beta", BETA_PASSWORD)).status_code == 401
    assert (await sign_in(site.client, "beta", "a brand new password")).status_code == 303


async def test_session_idle_expiry_signs_out(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)

    site.clocks.advance(SESSION_IDLE_TIMEOUT - timedelta(minutes=1))
    alive = await site.client.get("/")
    site.clocks.advance(SESSION_IDLE_TIMEOUT + timedelta(minutes=1))
    expired = await site.client.get("/")

    assert alive.status_code == 200
    assert expired.status_code == 303


async def test_member_account_403_on_coordinator(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    token = await csrf_token(site.client)

    pages = [
        await site.client.get("/coordinator/members"),
        await site.client.get("/coordinator/members/new"),
        await site.client.post("/coordinator/members/new", data={"csrf_token": token}),
        await site.client.post("/coordinator/members/beta/disable", data={"csrf_token": token}),
    ]

    assert [page.status_code for page in pages] == [403] * 4
    assert "Tę stronę może otworzyć tylko koordynator klastra." in pages[0].text


async def test_coordinator_creates_member(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    created = await site.client.post(
        "/coordinator/members/new?lang=en",
        data={
            "csrf_token": token,
            "member": "gamma",
            "name": "Gamma S.A.",
            "email": "biuro@gamma.pl",
            "phone": "+48 58 123 45 67",
            "voivodeship": "pomorskie",
            "city": "Gdańsk",
        },
    )
    password_match = re.search(r'id="one-time-password"><code>([^<]+)<', created.text)
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    assert password_match is not None
    one_time = password_match.group(1)

    profile = site.storage.read_profile("c1", "gamma")
    assert profile is not None
    assert (profile.name, profile.voivodeship, profile.city) == (
        "Gamma S.A.",
        "pomorskie",
        "Gdańsk",
    )
    assert site.storage.is_registered("c1", "gamma")

    site.client.cookies.clear()
    first = await sign_in(site.client, "gamma", one_time)
    assert first.headers["location"] == "/account/password"
    assert (await site.client.get("/")).headers["location"] == "/account/password"

    token = await csrf_token(site.client)
    changed = await site.client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": one_time,
            "new_password": "the new secret 42",
            "new_password_repeat": "the new secret 42",
        },
    )
    page = await site.client.get("/")

    assert changed.status_code == 303
    assert page.status_code == 200
    assert "gamma-cnc" in page.text
    assert "public-cnc" in page.text
    assert "group-cnc" not in page.text


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"member": "bad id!"}, "Nieprawidłowy identyfikator członka"),
        ({"member": "beta"}, "jest już zarejestrowany"),
        ({"member": "delta", "email": "not-an-email"}, "Nieprawidłowy adres e-mail"),
        ({"member": "delta", "phone": "call me"}, "Nieprawidłowy numer telefonu"),
        ({"member": "delta", "voivodeship": "bavaria"}, "Nieznane województwo"),
        ({"member": "delta", "username": "coord"}, "jest już zajęta"),
        ({"member": "delta", "username": "no spaces"}, "Nieprawidłowa nazwa użytkownika"),
        ({"member": "delta", "name": "Del\x00ta"}, "Pole „Nazwa firmy” zawiera znak sterujący"),
        ({"member": "delta", "city": "Gdy\x01nia"}, "Pole „Miejscowość” zawiera znak sterujący"),
        ({"member": "delta", "phone": "58\x00123456"}, "Pole „Telefon kontaktowy” zawiera"),
        ({"member": "delta", "name": "   "}, "Pole „Nazwa firmy” jest wymagane"),
        ({"member": "delta", "name": ""}, "Pole „Nazwa firmy” jest wymagane"),
    ],
)
async def test_coordinator_member_bad_input(
    site: Site, fields: dict[str, str], expected: str
) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/new", data={"csrf_token": token, "name": "Delta", **fields}
    )

    assert response.status_code == 400
    assert expected in response.text
    assert site.storage.read_profile("c1", "delta") is None


async def test_coordinator_reset_password(site: Site) -> None:
    beta_client = make_client(site.storage, site.clocks)
    async with beta_client:
        await sign_in(beta_client, "beta", BETA_PASSWORD)
        await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
        token = await csrf_token(site.client)

        reset = await site.client.post(
            "/coordinator/members/beta/reset-password", data={"csrf_token": token}
        )
        beta_page = await beta_client.get("/")

    match = re.search(r'id="one-time-password"><code>([^<]+)<', reset.text)
    assert reset.status_code == 200
    assert match is not None
    assert beta_page.status_code == 303
    site.client.cookies.clear()
    assert (await sign_in(site.client, "beta", BETA_PASSWORD)).status_code == 401
    signed_in = await sign_in(site.client, "beta", match.group(1))
    assert signed_in.headers["location"] == "/account/password"


async def test_disabled_user_sessions_end(site: Site) -> None:
    beta_client = make_client(site.storage, site.clocks)
    async with beta_client:
        await sign_in(beta_client, "beta", BETA_PASSWORD)
        assert (await beta_client.get("/")).status_code == 200
        await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
        token = await csrf_token(site.client)

        disabled = await site.client.post(
            "/coordinator/members/beta/disable", data={"csrf_token": token}
        )
        after = await beta_client.get("/")
        again = await sign_in(beta_client, "beta", BETA_PASSWORD)

    assert disabled.status_code == 303
    assert after.status_code == 303
    assert again.status_code == 401


async def test_reset_unknown_member_404(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/nobody/reset-password", data={"csrf_token": token}
    )

    assert response.status_code == 404


async def test_accounts_list_page(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)

    page = await site.client.get("/coordinator/members?lang=en")

    assert page.status_code == 200
    assert "beta" in page.text
    assert "/coordinator/members/beta/reset-password" in page.text
    assert 'id="signed-in">Anna Koordynator<' in page.text


async def test_secrets_never_logged(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await sign_in(site.client, "beta", "wrong password!")
    await sign_in(site.client, "beta", BETA_PASSWORD)
    session_id = site.client.cookies[SESSION_COOKIE]
    token = await csrf_token(site.client)
    await site.client.post("/logout", data={"csrf_token": token})

    assert "Failed dashboard sign-in for user 'beta'" in caplog.text
    for secret in ("wrong password!", BETA_PASSWORD, session_id, token):
        assert secret not in caplog.text


async def test_open_mode_without_accounts(storage: Storage) -> None:
    storage.store_offer(machine_offer("c1", "acme", "public-cnc"), T0)
    async with make_client(storage, Clocks()) as client:
        open_page = await client.get("/")
        login = await client.get("/login")

    assert open_page.status_code == 200
    assert "public-cnc" in open_page.text
    assert login.status_code == 303
    assert login.headers["location"] == "/"


def test_required_turns_true_after_first_account(storage: Storage) -> None:
    seconds = [0.0]
    authenticator = Authenticator(None, storage, lambda: T0, monotonic=lambda: seconds[0])
    assert not authenticator.required

    storage.create_user(
        username="coord",
        password_hash=hash_password(COORDINATOR_PASSWORD),
        role="coordinator",
        cluster="c1",
        member=None,
        display_name=None,
        must_change_password=False,
        now=T0,
    )
    cached = authenticator.required
    seconds[0] = ACCOUNTS_RECHECK_SECONDS

    assert not cached
    assert authenticator.required


async def test_new_member_form_too_large(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/new?lang=en",
        data={"csrf_token": token, "member": "delta", "name": "N" * 20_000, "city": "Gdynia"},
    )

    assert response.status_code == 413
    assert "The form is too large: the longest field may have at most 200 characters." in (
        response.text
    )
    assert 'value="delta"' in response.text
    assert site.storage.read_profile("c1", "delta") is None


async def test_too_large_form_wrong_csrf_413(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)

    response = await site.client.post(
        "/coordinator/members/new",
        data={"csrf_token": "wrong", "member": "delta", "name": "N" * 20_000},
    )

    assert response.status_code == 413
    assert "Formularz jest za duży." in response.text
    assert 'value="delta"' not in response.text
    assert site.storage.read_profile("c1", "delta") is None


@pytest.mark.parametrize("length", [4_096, 200_000])
async def test_too_large_password_change_413(site: Site, length: int) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    token = await csrf_token(site.client)
    new_password = "long password " + "x" * length

    # The token comes after the long field, so the cut at the size limit drops it.
    response = await site.client.post(
        "/account/password?lang=en",
        data={
            "current_password": BETA_PASSWORD,
            "new_password": new_password,
            "csrf_token": token,
            "new_password_repeat": new_password,
        },
    )

    assert response.status_code == 413
    assert "The form is too large." in response.text
    site.client.cookies.clear()
    assert (await sign_in(site.client, "beta", BETA_PASSWORD)).status_code == 303


async def test_too_large_sign_in_413(site: Site) -> None:
    response = await site.client.post(
        "/login?lang=en", data={"username": "beta", "password": "p" * 20_000}
    )

    assert response.status_code == 413
    assert "The form is too large." in response.text


async def test_too_large_sign_out_413(site: Site) -> None:
    await sign_in(site.client, "beta", BETA_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post("/logout", data={"pad": "x" * 9000, "csrf_token": token})

    assert response.status_code == 413
    assert "Formularz jest za duży." in response.text
    assert (await site.client.get("/")).status_code == 200


async def test_too_large_disable_form_413(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/beta/disable", data={"csrf_token": token, "pad": "x" * 9000}
    )

    assert response.status_code == 413
    assert "Formularz jest za duży." in response.text
    beta = site.storage.find_user("beta")
    assert beta is not None
    assert not beta.disabled


async def test_new_member_bad_fields_all_listed(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/new?lang=en",
        data={"csrf_token": token, "member": "bad id!", "name": "X\x00", "email": "nope"},
    )

    assert response.status_code == 400
    assert "Invalid member id" in response.text
    assert "The field “Company name” contains a control character" in response.text
    assert "Invalid e-mail address" in response.text


async def test_new_member_fields_trimmed(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/new",
        data={"csrf_token": token, "member": " delta ", "name": "  Delta S.A. ", "city": " Ustka "},
    )

    assert response.status_code == 200, response.text
    profile = site.storage.read_profile("c1", "delta")
    assert profile is not None
    assert profile.name == "Delta S.A."
    assert profile.city == "Ustka"


async def test_coordinator_enables_disabled_account(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)
    await site.client.post("/coordinator/members/beta/disable", data={"csrf_token": token})
    listing = await site.client.get("/coordinator/members?lang=en")

    wrong_token = await site.client.post(
        "/coordinator/members/beta/enable", data={"csrf_token": "wrong"}
    )
    still_disabled = site.storage.find_user("beta")
    enabled = await site.client.post("/coordinator/members/beta/enable", data={"csrf_token": token})
    beta = site.storage.find_user("beta")
    beta_client = make_client(site.storage, site.clocks)
    async with beta_client:
        signed_in = await sign_in(beta_client, "beta", BETA_PASSWORD)

    assert 'action="/coordinator/members/beta/enable?lang=en"' in listing.text
    assert ">Enable</button>" in listing.text
    assert wrong_token.status_code == 403
    assert still_disabled is not None
    assert still_disabled.disabled
    assert enabled.status_code == 303
    assert beta is not None
    assert not beta.disabled
    assert signed_in.status_code == 303


async def test_enable_unknown_member_404(site: Site) -> None:
    await sign_in(site.client, "coord", COORDINATOR_PASSWORD)
    token = await csrf_token(site.client)

    response = await site.client.post(
        "/coordinator/members/nobody/enable", data={"csrf_token": token}
    )

    assert response.status_code == 404
