"""``--trusted-proxy``: forwarded headers are trusted from the named proxies only.

On loopback the test client is also the "proxy", so trusting ``127.0.0.1`` makes its headers
count, and trusting only ``10.9.9.9`` leaves 127.0.0.1 an untrusted peer.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import httpx
import pytest

from kooperant.i18n import Language
from kooperant.net import free_tcp_port
from server.auth import SESSION_COOKIE
from server.errors import InvalidSettingError
from server.login_limits import MAX_ADDRESS_FAILURES
from server.proxies import forwarded_allow_ips, parse_trusted_proxy
from server.service import ServerSettings
from tests.server.test_proxy_headers import PASSWORD, add_coordinator
from tests.server.test_server_cli import invoke, run_cli
from tests.server.test_service import running_server

PROXY = "127.0.0.1"
OTHER_PROXY = "10.9.9.9"
HTTPS = {"X-Forwarded-Proto": "https"}
INVALID_VALUES = ["foo", "10.0.0.0/33", "", "10.0.0.1/24", "*"]


def server_settings(tmp_path: Path, *trusted: str, host: str = "127.0.0.1") -> ServerSettings:
    settings = ServerSettings(
        database=f"sqlite:///{tmp_path / 'k.db'}",
        http_host=host,
        http_port=free_tcp_port(),
        embedded_broker_port=free_tcp_port(),
        trusted_proxies=trusted,
    )
    add_coordinator(settings.database)
    return settings


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str, headers: dict[str, str]
) -> httpx.Response:
    response = await client.post(
        "/login", data={"username": username, "password": password}, headers=headers
    )
    client.cookies.clear()
    return response


async def fail_sign_ins(client: httpx.AsyncClient, forwarded_for: str) -> None:
    """Fail ``MAX_ADDRESS_FAILURES`` sign-ins, each with another user name, so no user key locks."""
    for number in range(MAX_ADDRESS_FAILURES):
        failed = await sign_in(
            client, f"guess{number}", "wrong password!", {"X-Forwarded-For": forwarded_for}
        )
        assert failed.status_code == 401, failed.text


async def test_trusted_proxy_https_cookie_secure(tmp_path: Path) -> None:
    settings = server_settings(tmp_path, PROXY)

    async with running_server(settings, "127.0.0.1") as client:
        over_https = await sign_in(client, "coord", PASSWORD, HTTPS)
        over_http = await sign_in(client, "coord", PASSWORD, {})

    assert over_https.status_code == 303, over_https.text
    assert over_https.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
    assert "secure" in over_https.headers["set-cookie"].lower()
    assert over_http.status_code == 303, over_http.text
    assert "secure" not in over_http.headers["set-cookie"].lower()


async def test_untrusted_peer_https_cookie_not_secure(tmp_path: Path) -> None:
    settings = server_settings(tmp_path, OTHER_PROXY)

    async with running_server(settings, "127.0.0.1") as client:
        forged = await sign_in(client, "coord", PASSWORD, HTTPS)

    assert forged.status_code == 303, forged.text
    assert forged.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
    assert "secure" not in forged.headers["set-cookie"].lower()


async def test_trusted_proxy_rate_limit_per_client(tmp_path: Path) -> None:
    settings = server_settings(tmp_path, PROXY)

    async with running_server(settings, "127.0.0.1") as client:
        await fail_sign_ins(client, "203.0.113.7")
        attacker = await sign_in(client, "coord", PASSWORD, {"X-Forwarded-For": "203.0.113.7"})
        # nginx appends the peer it saw, so the last untrusted entry is the client.
        other_client = await sign_in(
            client, "coord", PASSWORD, {"X-Forwarded-For": "203.0.113.7, 198.51.100.1"}
        )

    assert attacker.status_code == 429, attacker.text
    assert other_client.status_code == 303, other_client.text


async def test_untrusted_peer_rate_limit_per_peer(tmp_path: Path) -> None:
    settings = server_settings(tmp_path, OTHER_PROXY)

    async with running_server(settings, "127.0.0.1") as client:
        await fail_sign_ins(client, "203.0.113.7")
        other_client = await sign_in(client, "coord", PASSWORD, {"X-Forwarded-For": "198.51.100.1"})

    # Every failure came from the peer 127.0.0.1, whatever X-Forwarded-For held.
    assert other_client.status_code == 429, other_client.text


async def test_trusted_proxy_form_origin_checked(tmp_path: Path) -> None:
    settings = server_settings(tmp_path, PROXY)
    public = {**HTTPS, "Host": "dash.example.org", "X-Forwarded-For": "198.51.100.1"}

    async with running_server(settings, "127.0.0.1") as client:
        own_site = await sign_in(
            client, "coord", PASSWORD, {**public, "Origin": "https://dash.example.org"}
        )
        other_site = await sign_in(
            client, "coord", PASSWORD, {**public, "Origin": "https://evil.example"}
        )

    assert own_site.status_code == 303, own_site.text
    assert "secure" in own_site.headers["set-cookie"].lower()
    assert other_site.status_code == 403, other_site.text


async def test_trusted_proxy_ipv4_on_dual_stack(tmp_path: Path) -> None:
    # An IPv6 socket reports the IPv4 proxy 127.0.0.1 as ::ffff:127.0.0.1.
    settings = server_settings(tmp_path, "127.0.0.0/8", host="::ffff:127.0.0.1")

    async with running_server(settings, "127.0.0.1") as client:
        over_https = await sign_in(client, "coord", PASSWORD, HTTPS)

    assert over_https.status_code == 303, over_https.text
    assert "secure" in over_https.headers["set-cookie"].lower()


async def test_trusted_proxies_logged_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = server_settings(tmp_path, PROXY, "10.0.0.0/8")

    with caplog.at_level(logging.INFO, logger="server.service"):
        async with running_server(settings, "127.0.0.1"):
            pass

    trusted_lines = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert trusted_lines == [
        "Trusting X-Forwarded-For and X-Forwarded-Proto from the proxies 127.0.0.1, 10.0.0.0/8"
    ]


async def test_no_trusted_proxies_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = server_settings(tmp_path)

    with caplog.at_level(logging.INFO, logger="server.service"):
        async with running_server(settings, "127.0.0.1"):
            pass

    assert not [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]


@pytest.mark.parametrize("value", INVALID_VALUES)
def test_settings_reject_invalid_trusted_proxy(value: str) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(trusted_proxies=("127.0.0.1", value))

    assert raised.value.message_id == "trusted_proxy_invalid"
    assert f"--trusted-proxy {value!r}" in str(raised.value)


def test_settings_reject_string_trusted_proxies() -> None:
    with pytest.raises(TypeError, match="tuple of strings"):
        ServerSettings(trusted_proxies="127.0.0.1")  # type: ignore[arg-type]


def test_settings_accept_addresses_and_networks() -> None:
    settings = ServerSettings(trusted_proxies=("10.0.0.5", "192.168.0.0/16", "::1", "fd00::/8"))

    assert settings.trusted_proxy_networks == (
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("fd00::/8"),
    )


def test_forwarded_allow_ips_adds_ipv4_mapped_forms() -> None:
    networks = [parse_trusted_proxy(value) for value in ("10.1.2.0/24", "::1")]

    allowed = forwarded_allow_ips(networks)

    assert allowed == ["10.1.2.0/24", "::ffff:a01:200/120", "::1/128"]
    assert ipaddress.ip_address("::ffff:10.1.2.9") in ipaddress.ip_network(allowed[1])


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Invalid --trusted-proxy {value!r}: give an IP address"),
        ("pl", "Nieprawidłowa wartość --trusted-proxy {value!r}: podaj adres IP"),
    ],
)
@pytest.mark.parametrize("value", ["foo", "10.0.0.0/33", ""])
def test_cli_invalid_trusted_proxy_exits_2(
    tmp_path: Path, language: Language, expected: str, value: str
) -> None:
    database = f"sqlite:///{tmp_path / 'k.db'}"

    result = invoke(
        "run",
        "--database",
        database,
        "--trusted-proxy",
        "127.0.0.1",
        "--trusted-proxy",
        value,
        language=language,
    )

    assert result.exit_code == 2, result.output
    assert expected.format(value=value) in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "IP address or CIDR network of a reverse proxy"),
        ("pl", "Adres IP lub sieć CIDR serwera pośredniczącego"),
    ],
)
def test_cli_trusted_proxy_help_in_both_languages(language: str, expected: str) -> None:
    completed = run_cli("run", "--help", language=language)

    assert completed.returncode == 0, completed.stderr
    assert "--trusted-proxy" in completed.stdout
    assert expected in completed.stdout
