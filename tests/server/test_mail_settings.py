"""SMTP and public URL settings: validation, the password's sources, the CLI and the run loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner, Result

from kooperant.i18n import Language, use_language
from kooperant.net import free_tcp_port
from kooperant.protocol.request import Contact
from server.cli import app as server_app
from server.errors import InvalidSettingError
from server.mail_settings import (
    SMTP_PASSWORD_VARIABLE,
    SmtpAddress,
    SmtpSettings,
    request_link,
    smtp_settings_from_options,
)
from server.service import ServerSettings, run_server
from server.storage import Storage, Viewer
from server.storage.profiles import MemberProfile
from server.storage.tables import request_log
from tests.server.helpers import machine_offer
from tests.server.test_requests_storage import machine_request
from tests.support.smtp_sink import SmtpSink

SENDER = "kooperant@klaster.example"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"url": "http://mail.example.pl"},
            "Invalid --smtp-url http://mail.example.pl: it must start with smtp://",
        ),
        (
            {"url": "smtp://user:tajne@mail.example.pl"},
            "The --smtp-url smtp://***@mail.example.pl contains credentials",
        ),
        ({"url": "smtp://:25"}, "The --smtp-url smtp://:25 has no host"),
        ({"url": "smtp://mail.example.pl:99999"}, "Invalid port in --smtp-url"),
        ({"url": "smtp://mail.example.pl:0"}, "Invalid port in --smtp-url"),
        ({"url": "smtp://mail.example.pl/x?a=1"}, "has a path or query"),
        ({"sender": "kooperant"}, "Invalid --smtp-from kooperant: give one bare e-mail address"),
        ({"sender": "Kooperant <k@example.pl>"}, "Invalid --smtp-from Kooperant <k@example.pl>"),
        ({"sender": "k@example.pl\r\nBcc: x@y.pl"}, "Invalid --smtp-from"),
        ({"sender": "a@b.pl, c@d.pl"}, "Invalid --smtp-from"),
        (
            {"url": "smtps://mail.example.pl", "starttls": True},
            "--smtp-starttls does not go with --smtp-url smtps://mail.example.pl",
        ),
        ({"password": "x"}, "An SMTP password was given without --smtp-username"),
        ({"username": "łukasz"}, "The --smtp-username łukasz has characters outside ASCII"),
        ({"username": "u", "password": "hasło"}, "The SMTP password has characters outside"),
        (
            {"ca_file": Path("/nonexistent/ca.pem"), "starttls": True},
            "The --smtp-ca-file /nonexistent/ca.pem does not exist",
        ),
        ({"ca_file": Path("/nonexistent/ca.pem")}, "--smtp-ca-file needs TLS"),
    ],
)
def test_smtp_settings_reject_invalid(changes: dict[str, Any], expected: str) -> None:
    fields: dict[str, Any] = {"url": "smtp://mail.example.pl:587", "sender": SENDER, **changes}

    with pytest.raises(InvalidSettingError) as raised:
        SmtpSettings(**fields)

    assert expected in str(raised.value)
    assert "tajne" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.pl", SmtpAddress("mail.example.pl", 25)),
        ("smtp://mail.example.pl:587", SmtpAddress("mail.example.pl", 587)),
        ("smtps://mail.example.pl", SmtpAddress("mail.example.pl", 465, implicit_tls=True)),
        ("smtp://[::1]:2525/", SmtpAddress("::1", 2525)),
    ],
)
def test_smtp_settings_parse_address(url: str, expected: SmtpAddress) -> None:
    assert SmtpSettings(url=url, sender=SENDER).address == expected


def test_smtp_settings_repr_hides_password() -> None:
    smtp = SmtpSettings(url="smtp://h", sender=SENDER, username="u", password="Sekret-123")
    server = ServerSettings(smtp=smtp)

    assert "Sekret-123" not in repr(smtp)
    assert "Sekret-123" not in repr(server)


@pytest.mark.parametrize(
    "url",
    [
        "kooperant.example.pl",
        "ftp://kooperant.example.pl",
        "https://",
        "https://h/?a=1",
        "https://user@h/",
    ],
)
def test_public_url_rejects_invalid(url: str) -> None:
    with pytest.raises(InvalidSettingError) as raised:
        ServerSettings(public_url=url)

    assert f"Invalid --public-url {url}" in str(raised.value)


def test_request_link_joins_without_double_slash() -> None:
    assert request_link("https://k.example.pl/panel/", "abc") == (
        "https://k.example.pl/panel/requests/abc"
    )


# Options to settings


def options(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": "smtp://127.0.0.1:2525",
        "sender": SENDER,
        "username": None,
        "password_file": None,
        "starttls": False,
        "ca_file": None,
        "environment": {},
    }
    return {**base, **changes}


def test_options_without_url_give_none() -> None:
    assert smtp_settings_from_options(**options(url=None, sender=None)) is None


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"sender": SENDER}, "--smtp-from"),
        ({"username": "u"}, "--smtp-username"),
        ({"starttls": True}, "--smtp-starttls"),
        ({"ca_file": Path("ca.pem")}, "--smtp-ca-file"),
    ],
)
def test_options_without_url_rejected(changes: dict[str, Any], option: str) -> None:
    arguments = options(**{"url": None, "sender": None, **changes})

    with pytest.raises(InvalidSettingError) as raised:
        smtp_settings_from_options(**arguments)

    assert f"{option} has no effect without --smtp-url" in str(raised.value)


def test_options_url_needs_from() -> None:
    with pytest.raises(InvalidSettingError) as raised:
        smtp_settings_from_options(**options(sender=None))

    assert "--smtp-url smtp://127.0.0.1:2525 needs --smtp-from" in str(raised.value)


def test_options_password_from_environment() -> None:
    environment = {SMTP_PASSWORD_VARIABLE: "z-env"}

    smtp = smtp_settings_from_options(**options(username="u", environment=environment))

    assert smtp is not None
    assert smtp.password == "z-env"


def test_options_password_from_file(tmp_path: Path) -> None:
    path = tmp_path / "smtp-password"
    path.write_text("z-pliku\n", encoding="utf-8")

    smtp = smtp_settings_from_options(**options(username="u", password_file=path))

    assert smtp is not None
    assert smtp.password == "z-pliku"


def test_options_password_twice_rejected(tmp_path: Path) -> None:
    path = tmp_path / "smtp-password"
    path.write_text("z-pliku\n", encoding="utf-8")
    arguments = options(
        username="u", password_file=path, environment={SMTP_PASSWORD_VARIABLE: "z-env"}
    )

    with pytest.raises(InvalidSettingError) as raised:
        smtp_settings_from_options(**arguments)

    assert f"both in KOOPERANT_SMTP_PASSWORD and with --smtp-password-file {path}" in str(
        raised.value
    )
    assert "z-env" not in str(raised.value)


def test_options_missing_password_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "missing"

    with pytest.raises(InvalidSettingError) as raised:
        smtp_settings_from_options(**options(username="u", password_file=path))

    assert f"Cannot read the SMTP password file {path} (--smtp-password-file)" in str(raised.value)


# The command line


def invoke(*arguments: str, language: Language = "en", **environment: str) -> Result:
    with use_language(language):
        return CliRunner().invoke(server_app, list(arguments), env=environment)


@pytest.mark.parametrize(
    ("arguments", "language", "expected"),
    [
        (("--smtp-url", "smtp://h:1"), "en", "--smtp-url smtp://h:1 needs --smtp-from"),
        (("--smtp-url", "ftp://h", "--smtp-from", SENDER), "en", "Invalid --smtp-url ftp://h"),
        (
            ("--smtp-url", "smtp://h", "--smtp-from", "nie-adres"),
            "pl",
            "Nieprawidłowa wartość --smtp-from nie-adres",
        ),
        (("--smtp-from", SENDER), "en", "--smtp-from has no effect without --smtp-url"),
        (("--public-url", "kooperant.pl"), "en", "Invalid --public-url kooperant.pl"),
    ],
)
def test_cli_run_rejects_bad_mail_option(
    tmp_path: Path, arguments: tuple[str, ...], language: Language, expected: str
) -> None:
    database = f"sqlite:///{tmp_path / 'k.db'}"

    result = invoke("run", "--database", database, *arguments, language=language)

    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_cli_run_password_not_shown(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'k.db'}"

    result = invoke(
        "run",
        "--database",
        database,
        "--smtp-url",
        "smtp://h",
        "--smtp-from",
        SENDER,
        KOOPERANT_SMTP_PASSWORD="Sekret-998",
    )

    assert result.exit_code == 2, result.output
    assert "An SMTP password was given without --smtp-username" in result.stderr
    assert "Sekret-998" not in result.output


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "SMTP server for e-mails about capacity requests"),
        ("pl", "Serwer SMTP dla e-maili o zapytaniach o wolne moce"),
    ],
)
def test_cli_run_help_lists_mail_options(language: Language, expected: str) -> None:
    result = invoke("run", "--help", language=language, COLUMNS="400")

    text = " ".join(result.stdout.split())
    assert result.exit_code == 0, result.output
    for option in (
        "--smtp-url",
        "--smtp-starttls",
        "--smtp-from",
        "--smtp-username",
        "--smtp-password-file",
        "--smtp-ca-file",
        "--public-url",
    ):
        assert option in text
    assert expected in text


# The run loop


@pytest.fixture
def request_storage(tmp_path: Path) -> Iterator[tuple[str, Storage]]:
    """A migrated SQLite database with acme's machine, acme's profile and one request of beta."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    storage = Storage(url)
    storage.migrate()
    now = datetime.now(UTC)
    storage.store_offer(machine_offer(generated_at=now, accepts_requests=True), now)
    storage.save_profile(
        MemberProfile("pomorskie-metal", "acme", "Acme", contact_email="biuro@acme.example"), now
    )
    request = machine_request(created_at=now, contact=Contact("Anna", email="anna@beta.example"))
    storage.create_request(request, viewer=Viewer("pomorskie-metal", "beta"), now=now)
    yield url, storage
    storage.close()


async def run_briefly(settings: ServerSettings, sink: SmtpSink, expected_mails: int) -> None:
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(run_server(settings, stop, ready))
    async with asyncio.timeout(10):
        await ready.wait()
    try:
        if expected_mails:
            await asyncio.to_thread(sink.wait_for, expected_mails)
        # The first mail pass runs at start, so half a second is long enough to see a mail
        # that should not have been sent.
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        async with asyncio.timeout(8):
            await task


def mail_states(url: str) -> list[str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(request_log.c.mail_state)).scalars())
    finally:
        engine.dispose()


async def test_run_server_sends_request_mail(request_storage: tuple[str, Storage]) -> None:
    url, _ = request_storage
    port = free_tcp_port()
    settings = ServerSettings(
        database=url,
        http_port=free_tcp_port(),
        embedded_broker_port=free_tcp_port(),
        smtp=SmtpSettings(url=f"smtp://127.0.0.1:{port}", sender=SENDER),
        public_url="https://kooperant.example.pl",
    )

    with SmtpSink(port) as sink:
        await run_briefly(settings, sink, expected_mails=1)

    assert [mail.recipients for mail in sink.mails] == [("biuro@acme.example",)]
    assert "https://kooperant.example.pl/requests/" in sink.mails[0].text
    assert mail_states(url) == ["sent"]


async def test_run_server_without_smtp_sends_nothing(request_storage: tuple[str, Storage]) -> None:
    url, _ = request_storage
    port = free_tcp_port()
    settings = ServerSettings(
        database=url, http_port=free_tcp_port(), embedded_broker_port=free_tcp_port()
    )

    with SmtpSink(port) as sink:
        await run_briefly(settings, sink, expected_mails=0)

    assert sink.mails == []
    assert mail_states(url) == [None]
