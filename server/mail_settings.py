"""SMTP settings of the request e-mails, and the public dashboard URL their links start with.

The SMTP server is given as a URL, and its scheme chooses the transport:

    smtp://HOST[:PORT]    plain SMTP, port 25 by default. With ``starttls`` (the option
                          ``--smtp-starttls``) the connection switches to TLS with STARTTLS
                          before the login. Sending fails when the server does not offer it.
                          The usual port for STARTTLS is 587.
    smtps://HOST[:PORT]   SMTP inside TLS from the first byte (implicit TLS), port 465 by default.

The user name and password are separate settings, so a URL that carries them is rejected. Every
invalid value raises ``InvalidSettingError`` naming the option and the value; the password is
never part of a message or the repr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from urllib.parse import urlsplit

from server.errors import InvalidSettingError
from server.server_urls import split_server_url

DEFAULT_SMTP_PORT = 25
DEFAULT_SMTPS_PORT = 465
DEFAULT_SMTP_TIMEOUT_SECONDS = 30.0
SMTP_PASSWORD_VARIABLE = "KOOPERANT_SMTP_PASSWORD"


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP server, sender and login of the e-mails about requests, validated when created.

    ``sender`` is the From address, such as ``kooperant@klaster.example.pl``. ``ca_file`` replaces
    the system's trusted CAs for the server's certificate (``smtps://`` or STARTTLS only).
    ``timeout_seconds`` bounds the connection and each SMTP command.
    """

    url: str
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ca_file: Path | None = None
    timeout_seconds: float = DEFAULT_SMTP_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        address = parse_smtp_url(self.url)
        check_sender(self.sender)
        if self.starttls and address.implicit_tls:
            raise InvalidSettingError("smtp_starttls_with_smtps", url=self.url)
        if self.password is not None and self.username is None:
            raise InvalidSettingError("smtp_password_without_username")
        # smtplib (Python 3.11) encodes the AUTH PLAIN and LOGIN data as ASCII and raises
        # UnicodeEncodeError for anything else, so such a login could never succeed.
        if not (self.username or "").isascii():
            raise InvalidSettingError("smtp_username_not_ascii", value=self.username)
        if not (self.password or "").isascii():
            raise InvalidSettingError("smtp_password_not_ascii")
        if self.ca_file is not None:
            if not (self.starttls or address.implicit_tls):
                raise InvalidSettingError("smtp_ca_file_without_tls", url=self.url)
            if not self.ca_file.is_file():
                raise InvalidSettingError("smtp_ca_file_missing", path=str(self.ca_file))
        if not self.timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be above 0, got {self.timeout_seconds}")

    @property
    def address(self) -> SmtpAddress:
        return parse_smtp_url(self.url)


@dataclass(frozen=True, slots=True)
class SmtpAddress:
    """Host and TCP port of an SMTP server, and whether TLS starts with the connection."""

    host: str
    port: int
    implicit_tls: bool = False


def parse_smtp_url(url: str) -> SmtpAddress:
    """Return the server in ``url``, or raise ``InvalidSettingError`` naming ``--smtp-url``."""
    parts = split_server_url(url, ("smtp", "smtps"), "smtp_url", _without_credentials(url))
    implicit_tls = parts.scheme == "smtps"
    default_port = DEFAULT_SMTPS_PORT if implicit_tls else DEFAULT_SMTP_PORT
    return SmtpAddress(parts.host, parts.port or default_port, implicit_tls)


def check_sender(sender: str) -> None:
    """Raise ``InvalidSettingError`` naming ``--smtp-from`` unless ``sender`` is one address."""
    if not is_mail_address(sender):
        raise InvalidSettingError("smtp_from_invalid", value=sender)


def is_mail_address(value: str) -> bool:
    """Tell whether ``value`` is a bare ``local@domain`` address without control characters."""
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        return False
    try:
        address = Address(addr_spec=value)
    except (HeaderParseError, ValueError, IndexError):
        return False
    return bool(address.username and address.domain) and address.addr_spec == value


def check_public_url(url: str) -> None:
    """Raise ``InvalidSettingError`` naming ``--public-url`` unless it is an http(s) base URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSettingError("public_url_invalid", url=url)
    if parts.query or parts.fragment or parts.username is not None:
        raise InvalidSettingError("public_url_invalid", url=url)


def request_link(public_url: str, request_id: str) -> str:
    """Return the dashboard page of request ``request_id`` below ``public_url``."""
    return f"{public_url.rstrip('/')}/requests/{request_id}"


def _without_credentials(url: str) -> str:
    # The URL is shown in an error, so anything before "@" in its authority is replaced.
    scheme, separator, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{separator}{authority}{slash}{path}"


def smtp_settings_from_options(
    *,
    url: str | None,
    sender: str | None,
    username: str | None,
    password_file: Path | None,
    starttls: bool,
    ca_file: Path | None,
    environment: Mapping[str, str],
) -> SmtpSettings | None:
    """Return the SMTP settings of ``kooperant server run``'s options, or ``None`` without a URL.

    The password comes from ``KOOPERANT_SMTP_PASSWORD`` in ``environment`` or from the first line
    of ``password_file``, never from the command line. An SMTP option without ``--smtp-url``
    raises ``InvalidSettingError``, because the operator expects it to do something.
    """
    if url is None:
        ignored = {
            "--smtp-from": sender,
            "--smtp-username": username,
            "--smtp-password-file": password_file,
            "--smtp-starttls": True if starttls else None,
            "--smtp-ca-file": ca_file,
        }
        for option, value in ignored.items():
            if value is not None:
                raise InvalidSettingError("smtp_option_without_url", option=option)
        return None
    if sender is None:
        raise InvalidSettingError("smtp_from_missing", url=url)

    password = environment.get(SMTP_PASSWORD_VARIABLE) or None
    if password_file is not None:
        if password is not None:
            raise InvalidSettingError("smtp_password_twice", path=str(password_file))
        password = _read_password_file(password_file)
    return SmtpSettings(
        url=url,
        sender=sender,
        username=username,
        password=password,
        starttls=starttls,
        ca_file=ca_file,
    )


def _read_password_file(path: Path) -> str:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InvalidSettingError(
            "smtp_password_file_unreadable", path=str(path), detail=detail
        ) from error
    return lines[0] if lines else ""
