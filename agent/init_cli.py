"""``kooperant agent init``: write a first agent.yaml and policy.yaml, then check them.

In a terminal the command asks its questions (``agent.init_wizard``); with ``--non-interactive``,
or when standard input is not a terminal (a script, a pipe, a scheduled task), it takes every
answer from the flags (``agent.init_flags``) and never waits for input. The files are written by
``agent.config_writer``. Then the command runs ``kooperant agent check`` on the written config.

Exit status: 2 when a flag or answer is invalid, a file exists without ``--force`` or the output
folder cannot be written, and nothing is written then. The wizard ended early writes nothing and
exits with 130 after Ctrl+C and 2 after the end of input or the choice to quit. Otherwise the exit
status of the check (0 clean, 1 warnings, 2 invalid), or 0 with ``--skip-check``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from agent import check_cli
from agent.browse_cli import DEFAULT_TIMEOUT_SECONDS
from agent.config_writer import TargetExistsError, WrittenFiles, write_files
from agent.init_answers import InitAnswers
from agent.init_flags import FlagError, InitFlags, answers_from_flags
from agent.init_wizard import WizardAborted, ask_answers
from agent.preview import DEFAULT_WAIT_SECONDS
from kooperant.i18n import LANGUAGES, Catalog, Language, current_language, use_language

EXIT_INIT_FAILED = 2

_ = Catalog.for_module(__name__)

HELP = _("help")


def init(
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", help=_("non_interactive.help"))
    ] = False,
    member: Annotated[str | None, typer.Option("--member", help=_("member.help"))] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help=_("cluster.help"))] = None,
    broker_url: Annotated[
        str | None, typer.Option("--broker-url", help=_("broker_url.help"))
    ] = None,
    broker_username: Annotated[
        str | None, typer.Option("--broker-username", help=_("broker_username.help"))
    ] = None,
    broker_password_file: Annotated[
        Path | None, typer.Option("--broker-password-file", help=_("broker_password_file.help"))
    ] = None,
    opcua: Annotated[
        list[str] | None, typer.Option("--opcua", metavar="URL", help=_("opcua.help"))
    ] = None,
    export: Annotated[
        list[str] | None, typer.Option("--export", metavar="TYPE=PATH", help=_("export.help"))
    ] = None,
    host: Annotated[bool | None, typer.Option("--host/--no-host", help=_("host.help"))] = None,
    output: Annotated[Path | None, typer.Option("--output", help=_("output.help"))] = None,
    audit_log: Annotated[
        str | None, typer.Option("--audit-log", metavar="PATH", help=_("audit_log.help"))
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=_("force.help"))] = False,
    skip_check: Annotated[bool, typer.Option("--skip-check", help=_("skip_check.help"))] = False,
    lang: Annotated[str | None, typer.Option("--lang", help=_("lang.help"))] = None,
) -> None:
    language = _language(lang)
    flags = InitFlags(
        member=member,
        cluster=cluster,
        broker_url=broker_url,
        broker_username=broker_username,
        broker_password_file=broker_password_file,
        opcua=tuple(opcua or ()),
        exports=tuple(export or ()),
        host=host,
        output=output,
        audit_log=audit_log,
        timeout_seconds=DEFAULT_TIMEOUT_SECONDS,
        force=force,
    )
    with use_language(language):
        interactive = not non_interactive and sys.stdin.isatty()
        answers = _answers(flags, interactive)
        written = _write(answers, force or answers.overwrite)
        _report_written(written)
        status = 0 if skip_check else _run_check(written.config)
        typer.echo(_("next_steps", config=written.config, policy=written.policy))
        # On Windows the service runs as LocalSystem, which reads the file already.
        if written.password is not None and sys.platform != "win32":
            typer.echo(_("next_steps.secrets", path=written.password))
    if status:
        raise typer.Exit(status)


def _language(value: str | None) -> Language:
    if value is None:
        return current_language()
    for language in LANGUAGES:
        if value.strip().lower() == language:
            return language
    typer.echo(_("lang.invalid", value=value), err=True)
    raise typer.Exit(EXIT_INIT_FAILED)


def _answers(flags: InitFlags, interactive: bool) -> InitAnswers:
    if interactive:
        try:
            return ask_answers(flags)
        except WizardAborted as error:
            # The line the user was typing on is left without a line break.
            typer.echo("", err=True)
            typer.echo(error.message, err=True)
            raise typer.Exit(error.exit_code) from error
    try:
        return answers_from_flags(flags)
    except FlagError as error:
        typer.echo(error.message, err=True)
        typer.echo(_("nothing_written"), err=True)
        raise typer.Exit(EXIT_INIT_FAILED) from error


def _write(answers: InitAnswers, force: bool) -> WrittenFiles:
    try:
        return write_files(answers, force=force)
    except TargetExistsError as error:
        typer.echo(_("exists", path=error.path), err=True)
        raise typer.Exit(EXIT_INIT_FAILED) from error
    except OSError as error:
        reason = error.strerror or str(error)
        path = error.filename or answers.output
        typer.echo(_("unwritable", output=answers.output, path=path, reason=reason), err=True)
        raise typer.Exit(EXIT_INIT_FAILED) from error


def _report_written(written: WrittenFiles) -> None:
    typer.echo(_("written.config", path=written.config))
    typer.echo(_("written.policy", path=written.policy))
    typer.echo(_("written.schemas", config=written.config_schema, policy=written.policy_schema))
    if written.password is not None:
        typer.echo(_("written.password", path=written.password))


def _run_check(config: Path) -> int:
    """Run ``kooperant agent check --config CONFIG`` in this process; return its exit status."""
    typer.echo(_("checking", config=config))
    try:
        check_cli.check(config=config, wait=DEFAULT_WAIT_SECONDS, offline=False, json_output=False)
    except typer.Exit as result:
        return result.exit_code
    return 0
