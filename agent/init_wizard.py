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
    check_plain_text,
    default_audit_log,
    default_host_resource,
    parse_audit_log,
    parse_broker,
    parse_export_path,
    parse_identifier,
    parse_opcua_url,
    unique_id,
)
from agent.init_browse import browse_with_progress
from agent.init_flags import InitFlags
from agent.reasons import checked_identifier
from kooperant.i18n import Catalog

T = TypeVar("T")

_ = Catalog.for_module(__name__)


class WizardAborted(Exception):
    """Raised when the user ends the wizard before its last answer; nothing is written then.

    ``exit_code`` is 130 after Ctrl+C, as for a shell command ended by SIGINT, and 2 after the end
    of input (Ctrl+D, or Ctrl+Z and Enter on Windows) or the choice to quit.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        self.message = message
        self.exit_code = exit_code
        super().__init__(message)


EXIT_INTERRUPTED = 130
EXIT_QUIT = 2


def ask_answers(flags: InitFlags) -> InitAnswers:
    """Ask every question in turn and return the answers; raise ``WizardAborted`` if ended early."""
    try:
        return _ask_all(flags)
    except KeyboardInterrupt as error:
        # Ctrl+C while a server is browsed arrives here directly, not through a prompt.
        raise WizardAborted(_("aborted.interrupt"), EXIT_INTERRUPTED) from error
    except typer.Abort as error:
        # click turns both KeyboardInterrupt and EOFError of a prompt into Abort, raised
        # "from None", so only the implicit context distinguishes them (typer 0.29's click copy).
        if isinstance(error.__context__, EOFError):
            raise WizardAborted(_("aborted.eof"), EXIT_QUIT) from error
        raise WizardAborted(_("aborted.interrupt"), EXIT_INTERRUPTED) from error


def _ask_all(flags: InitFlags) -> InitAnswers:
    typer.echo(_("intro"))
    _warn_existing(flags.output or Path.cwd(), flags.force)
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

    output, overwrite = _ask_output(flags, with_password=password is not None)
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
        overwrite=overwrite,
        broker_username=username,
        broker_password=password,
        servers=servers,
        exports=exports,
        host_resource=host_resource,
        audit_log=audit_log,
    )


def _ask_valid(question: str, parse: Callable[[str], T], default: str | None = None) -> T:
    while True:
        # Without a default, click asks again after an empty answer without saying why.
        text: str = typer.prompt(question, default=default or "", show_default=bool(default))
        if not text.strip():
            typer.echo(_("invalid", reason=_("required")))
            continue
        try:
            return parse(text)
        except ValueError as error:
            typer.echo(_("invalid", reason=error))


def _ask_optional(question: str, default: str | None, *, hide_input: bool = False) -> str | None:
    while True:
        text: str = typer.prompt(
            question, default=default or "", show_default=bool(default), hide_input=hide_input
        )
        if hide_input:
            # A password is taken as typed, because spaces may belong to it.
            return text or None
        try:
            return check_plain_text(text.strip()) or None
        except ValueError as error:
            typer.echo(_("invalid", reason=error))


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
        text = (
            pending.pop(0)
            if pending
            else typer.prompt(_("opcua.url"), default="", show_default=False).strip()
        )
        if not text:
            return tuple(servers)
        try:
            url = parse_opcua_url(text, [server.url for server in servers])
        except ValueError as error:
            typer.echo(_("invalid", reason=error))
            continue
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
    path = Path(check_plain_text(text.strip())).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(_("output.not_folder", path=path))
    return path


def _warn_existing(folder: Path, force: bool) -> None:
    """Say at once when the default output folder has the files, rather than at its question."""
    folder = folder.expanduser().absolute()
    existing = existing_targets(folder, with_password=False)
    if existing and not force:
        typer.echo(_("output.warning", output=folder, files=_names(existing, folder)))


def _ask_output(flags: InitFlags, *, with_password: bool) -> tuple[Path, bool]:
    """Ask for the output folder and return it and whether its files may be overwritten.

    When the folder has files that would be replaced, the user writes to another folder, confirms
    overwriting them, or quits. The next default is a subfolder without those files.
    """
    another, overwrite, quit_ = _("output.choice.keys").split("|")
    default = flags.output or Path.cwd()
    while True:
        output = _ask_valid(_("output"), _parse_output, str(default))
        existing = existing_targets(output, with_password=with_password)
        if not existing or flags.force:
            return output, flags.force

        typer.echo(_("output.exists", output=output, files=_names(existing, output)))
        choice = _ask_choice(_("output.choice"), (another, overwrite, quit_), another)
        if choice == quit_:
            raise WizardAborted(_("aborted.quit"), EXIT_QUIT)
        if choice == overwrite and ask_yes_no(_("output.overwrite", output=output), False):
            return output, True
        default = _free_folder(output, with_password=with_password)


def _ask_choice(question: str, keys: tuple[str, ...], default: str) -> str:
    while True:
        text: str = typer.prompt(question, default=default)
        choice = text.strip().lower()[:1]
        if choice in keys:
            return choice
        typer.echo(_("choice.invalid", value=text, keys=", ".join(keys)))


def _free_folder(output: Path, *, with_password: bool) -> Path:
    """Return the first of ``output/kooperant``, ``output/kooperant-2``... without init's files."""
    candidate = output / "kooperant"
    suffix = 2
    while existing_targets(candidate, with_password=with_password):
        candidate = output / f"kooperant-{suffix}"
        suffix += 1
    return candidate


def _names(paths: list[Path], folder: Path) -> str:
    return ", ".join(str(path.relative_to(folder)) for path in paths)
