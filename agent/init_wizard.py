"""The questions of ``kooperant agent init`` in a terminal, in Polish or English.

Each answer is checked as soon as it is given, with the rules of ``agent.init_answers``, and a bad
answer is asked again after the reason. Values given as flags are offered as the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from adapters.opcua.browse import BrowseError
from agent.browse_cli import error_message
from agent.config_writer import existing_targets
from agent.init_answers import (
    DEFAULT_BROKER_URL,
    EXPORT_TYPES,
    ExportSource,
    InitAnswers,
    OpcUaServer,
    default_audit_log,
    default_host_resource,
    parse_audit_log,
    parse_broker,
    parse_export_path,
    parse_identifier,
    unique_id,
)
from agent.init_browse import browse_with_progress
from agent.init_flags import InitFlags
from agent.reasons import checked_identifier
from kooperant.i18n import Catalog

T = TypeVar("T")

_ = Catalog.for_module(__name__)


def ask_answers(flags: InitFlags) -> InitAnswers:
    """Ask every question in turn and return the answers."""
    typer.echo(_("intro"))
    member = _ask_valid(_("member"), lambda text: parse_identifier(text, "member"), flags.member)
    cluster = _ask_valid(
        _("cluster"), lambda text: parse_identifier(text, "cluster"), flags.cluster
    )
    broker_url = _ask_valid(_("broker.url"), parse_broker, flags.broker_url or DEFAULT_BROKER_URL)
    username = _ask_optional(_("broker.username"), flags.broker_username)
    password = None
    if username is not None:
        password = _ask_optional(_("broker.password"), None, hide_input=True)

    used_ids: set[str] = set()
    servers = _ask_servers(flags, used_ids)
    exports = _ask_exports()
    host_resource = _ask_host(flags.host, used_ids)

    def parse_output(text: str) -> Path:
        path = _parse_output(text)
        existing = existing_targets(path, with_password=password is not None)
        if existing and not flags.force:
            raise ValueError(_("output.exists", path=existing[0]))
        return path

    output = _ask_valid(_("output"), parse_output, str(flags.output or Path.cwd()))
    audit_log = _ask_valid(
        _("audit_log"),
        lambda text: parse_audit_log(text, output),
        flags.audit_log or str(default_audit_log()),
    )
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


def _ask_valid(question: str, parse: Callable[[str], T], default: str | None = None) -> T:
    while True:
        text: str = typer.prompt(question, default=default)
        try:
            return parse(text)
        except ValueError as error:
            typer.echo(_("invalid", reason=error))


def _ask_optional(question: str, default: str | None, *, hide_input: bool = False) -> str | None:
    text: str = typer.prompt(
        question, default=default or "", show_default=bool(default), hide_input=hide_input
    )
    if hide_input:
        # A password is taken as typed, because spaces may belong to it.
        return text or None
    return text.strip() or None


def ask_yes_no(question: str, default: bool) -> bool:
    """Ask a yes or no question; the accepted words come from the catalogue."""
    yes_words = _("yes.words").split("|")
    no_words = _("no.words").split("|")
    suffix = _("yes_no.default_yes") if default else _("yes_no.default_no")
    while True:
        text: str = typer.prompt(f"{question} {suffix}", default="", show_default=False)
        word = text.strip().lower()
        if not word:
            return default
        if word in yes_words:
            return True
        if word in no_words:
            return False
        typer.echo(_("yes_no.invalid", value=text))


def _ask_servers(flags: InitFlags, used_ids: set[str]) -> tuple[OpcUaServer, ...]:
    typer.echo(_("opcua.intro"))
    servers: list[OpcUaServer] = []
    pending = list(flags.opcua)
    while True:
        url = (
            pending.pop(0)
            if pending
            else typer.prompt(_("opcua.url"), default="", show_default=False).strip()
        )
        if not url:
            return tuple(servers)
        server = _browse_until_decided(url, flags.timeout_seconds, used_ids)
        if server is not None:
            servers.append(server)


def _browse_until_decided(
    url: str, timeout_seconds: float, used_ids: set[str]
) -> OpcUaServer | None:
    """Browse ``url`` until it works or the user skips it or keeps it unbrowsed."""
    retry, skip, keep = _("opcua.choice.keys").split("|")
    while True:
        try:
            return browse_with_progress(url, timeout_seconds, used_ids)
        except BrowseError as error:
            typer.echo(error_message(error, timeout_seconds))
        while True:
            text: str = typer.prompt(_("opcua.choice"), default=skip)
            choice = text.strip().lower()[:1]
            if choice in (retry, skip, keep):
                break
            typer.echo(_("opcua.choice.invalid", value=text))
        if choice == skip:
            return None
        if choice == keep:
            return OpcUaServer(url, (), browsed=False)


def _ask_exports() -> tuple[ExportSource, ...]:
    typer.echo(_("exports.intro"))
    exports = []
    for export in EXPORT_TYPES:
        while True:
            text: str = typer.prompt(_(f"exports.{export.type}"), default="", show_default=False)
            if not text.strip():
                break
            try:
                path = parse_export_path(text)
            except ValueError as error:
                typer.echo(_("invalid", reason=error))
                continue
            if not path.exists():
                typer.echo(_("exports.missing", path=path))
            exports.append(ExportSource(export, path))
            break
    return tuple(exports)


def _ask_host(default: bool | None, used_ids: set[str]) -> str | None:
    if not ask_yes_no(_("host"), bool(default)):
        return None

    def parse_resource(text: str) -> str:
        resource = checked_identifier(text.strip(), "resource")
        if resource in used_ids:
            raise ValueError(_("host.taken", resource=resource))
        return resource

    resource = _ask_valid(
        _("host.resource"), parse_resource, unique_id(default_host_resource(), set(used_ids))
    )
    used_ids.add(resource)
    return resource


def _parse_output(text: str) -> Path:
    path = Path(text.strip()).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(_("output.not_folder", path=path))
    return path
