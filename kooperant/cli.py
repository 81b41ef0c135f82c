"""The ``kooperant`` command: ``agent``, ``server``, ``adapter`` and ``demo`` sub-commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.cli import app as agent_app
from agent.config import add_load_hook
from kooperant import __version__, cli_translations
from kooperant.adapter_cli import app as adapter_app
from kooperant.demo.cli import demo
from kooperant.i18n import Catalog
from kooperant.logs import (
    DEFAULT_BACKUP_COUNT,
    DEFAULT_MAX_MEGABYTES,
    MEGABYTE,
    LogFileError,
    LogFormat,
    configure_logging,
    register_secrets_in,
)
from server.cli import app as server_app

_ = Catalog.for_module(__name__)

# Exit status of an unusable --log-file, as click uses for invalid options.
EXIT_LOG_FILE_ERROR = 2

app = typer.Typer(help=_("help"), no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(agent_app, name="agent", help=_("agent"))
app.add_typer(server_app, name="server", help=_("server"))
app.add_typer(adapter_app, name="adapter", help=_("adapter"))
app.command(name="demo")(demo)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"kooperant {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help=_("version")),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=_("verbose"))] = False,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", envvar="KOOPERANT_LOG_FILE", metavar="PATH", help=_("log_file")),
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", envvar="KOOPERANT_LOG_FORMAT", help=_("log_format")),
    ] = "text",
    log_max_megabytes: Annotated[
        float,
        typer.Option(
            "--log-max-megabytes",
            envvar="KOOPERANT_LOG_MAX_MEGABYTES",
            min=0.001,
            max=100_000,
            help=_("log_max_megabytes"),
        ),
    ] = DEFAULT_MAX_MEGABYTES,
    log_backups: Annotated[
        int,
        typer.Option(
            "--log-backups",
            envvar="KOOPERANT_LOG_BACKUPS",
            min=1,
            max=1000,
            help=_("log_backups"),
        ),
    ] = DEFAULT_BACKUP_COUNT,
) -> None:
    try:
        configure_logging(
            verbose=verbose,
            log_file=log_file,
            log_format=log_format,
            max_bytes=int(log_max_megabytes * MEGABYTE),
            backup_count=log_backups,
        )
    except LogFileError as error:
        typer.echo(_("log_file_unusable", path=error.path, reason=error.reason), err=True)
        raise typer.Exit(EXIT_LOG_FILE_ERROR) from error
    add_load_hook(register_secrets_in)


def main() -> None:
    """Run the command line; the console script ``kooperant`` points here."""
    # Typer writes its own help layout and usage errors in English. The hooks translate them
    # on every call, and are installed here, not at import, so importing the CLI module leaves
    # typer unchanged for other code in the process.
    cli_translations.install()
    app()
