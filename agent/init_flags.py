"""Answers of ``kooperant agent init --non-interactive``, taken from the command-line flags.

Every flag is checked before any server is browsed, and a bad value raises ``FlagError`` naming
the flag and the value, so that the command can stop with exit status 2 before writing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from adapters.opcua.browse import BrowseError
from agent.browse_cli import DEFAULT_TIMEOUT_SECONDS, error_message
from agent.init_answers import (
    DEFAULT_BROKER_URL,
    ExportSource,
    InitAnswers,
    OpcUaServer,
    check_plain_text,
    default_audit_log,
    default_host_resource,
    parse_audit_log,
    parse_broker,
    parse_export,
    parse_identifier,
    parse_opcua_url,
    unique_id,
)
from agent.init_browse import browse_with_progress
from kooperant.i18n import Catalog
from kooperant.net import mask_url_credentials

_ = Catalog.for_module(__name__)

T = TypeVar("T")


class FlagError(Exception):
    """Raised when a flag is missing or its value is invalid; ``message`` is for the user."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class InitFlags:
    """The flags of ``kooperant agent init`` as given; None when a flag was not given."""

    member: str | None = None
    cluster: str | None = None
    broker_url: str | None = None
    broker_username: str | None = None
    broker_password_file: Path | None = None
    opcua: tuple[str, ...] = ()
    exports: tuple[str, ...] = ()
    host: bool | None = None
    output: Path | None = None
    audit_log: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    force: bool = False


def answers_from_flags(flags: InitFlags) -> InitAnswers:
    """Return the answers the flags give; raise ``FlagError`` on the first bad or missing one."""
    member = _identifier(flags.member, "--member", "member")
    cluster = _identifier(flags.cluster, "--cluster", "cluster")
    broker_url = _checked(
        "--broker-url", flags.broker_url or DEFAULT_BROKER_URL, parse_broker, mask_url_credentials
    )
    username = _username(flags.broker_username)
    password = _password(flags.broker_password_file, username)
    urls = _opcua_urls(flags.opcua)
    _check_output(flags.output)
    exports = tuple(_export(value) for value in flags.exports)
    output = (flags.output or Path.cwd()).expanduser().absolute()
    audit_log = _checked(
        "--audit-log",
        flags.audit_log or str(default_audit_log()),
        lambda text: parse_audit_log(text, output),
    )

    used_ids: set[str] = set()
    servers = tuple(_browse(url, flags.timeout_seconds, used_ids) for url in urls)
    host_resource = None
    if flags.host:
        host_resource = unique_id(default_host_resource(), used_ids)
    return InitAnswers(
        member=member,
        cluster=cluster,
        broker_url=broker_url,
        output=output,
        broker_username=username,
        broker_password=password,
        servers=servers,
        exports=exports,
        host_resource=host_resource,
        audit_log=audit_log,
    )


def _identifier(value: str | None, flag: str, what: str) -> str:
    if value is None:
        raise FlagError(_("missing", flag=flag))
    return _checked(flag, value, lambda text: parse_identifier(text, what))


def _checked(
    flag: str, value: str, parse: Callable[[str], T], shown: Callable[[str], str] = str
) -> T:
    """Return ``parse(value)``; ``shown`` hides a secret the value may contain in the error."""
    try:
        return parse(value)
    except ValueError as error:
        raise FlagError(_("invalid", flag=flag, value=shown(value), reason=error)) from error


def _username(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise FlagError(_("invalid", flag="--broker-username", value=value, reason=_("empty")))
    return _checked("--broker-username", value.strip(), check_plain_text)


def _password(path: Path | None, username: str | None) -> str | None:
    if path is None:
        return None
    if username is None:
        raise FlagError(_("password.without_username"))
    _checked("--broker-password-file", str(path), check_plain_text)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FlagError(_("password.unreadable", path=path, reason=error)) from error

    # An editor or `echo` adds a final newline that is not part of the password.
    password = text.rstrip("\r\n")
    if not password:
        raise FlagError(_("password.empty", path=path))
    return password


def _export(value: str) -> ExportSource:
    export, path = _checked("--export", value, parse_export)
    return ExportSource(export, path)


def _check_output(value: Path | None) -> None:
    if value is not None:
        _checked("--output", str(value), check_plain_text)


def _opcua_urls(values: tuple[str, ...]) -> list[str]:
    """Return the checked URLs, so that a bad one stops the command before any browsing."""
    urls: list[str] = []
    for value in values:
        urls.append(_checked("--opcua", value, lambda text: parse_opcua_url(text, urls)))
    return urls


def _browse(url: str, timeout_seconds: float, used_ids: set[str]) -> OpcUaServer:
    try:
        return browse_with_progress(url, timeout_seconds, used_ids)
    except BrowseError as error:
        reason = error_message(error, timeout_seconds)
        raise FlagError(_("browse.failed", flag="--opcua", reason=reason)) from error
