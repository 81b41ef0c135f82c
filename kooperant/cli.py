"""The ``kooperant`` command: ``agent``, ``server``, ``adapter`` and ``demo`` sub-commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from agent.cli import app as agent_app
from agent.config import add_load_hook
from kooperant import __version__, cli_translations
from kooperant.adapter_cli import app as adapter_app
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

_ = Catalog.for_module(__name__)

# Exit status of an unusable --log-file, as click uses for invalid options.
EXIT_LOG_FILE_ERROR = 2

# The order of the sub-commands in the help.
_COMMAND_ORDER = ("agent", "server", "adapter", "demo")


def _server_command() -> Any:
    from server.cli import app as server_app

    wrapper = typer.Typer()
    wrapper.add_typer(server_app, name="server", help=_("server"))
    return typer.main.get_group(wrapper).commands["server"]


def _demo_command() -> Any:
    from kooperant.demo.cli import demo

    wrapper = typer.Typer()
    wrapper.command(name="demo")(demo)
    return typer.main.get_group(wrapper).commands["demo"]


class _LazyCommands(MutableMapping[str, Any]):
    """Sub-commands by name, where ``server`` and ``demo`` are imported on first use.

    Their modules import the aggregator (FastAPI, SQLAlchemy and the dashboard), which would add
    about 35 MB to the memory of every ``kooperant agent`` process that never uses them.
    """

    def __init__(self, built: MutableMapping[str, Any], lazy: dict[str, Callable[[], Any]]):
        self._built = built
        self._lazy = lazy

    def __getitem__(self, name: str) -> Any:
        if name not in self._built and name in self._lazy:
            self._built[name] = self._lazy[name]()
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._lazy.pop(name, None)
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        names = dict.fromkeys([*self._built, *self._lazy])
        ordered = [name for name in _COMMAND_ORDER if name in names]
        return iter([*ordered, *(name for name in names if name not in ordered)])

    def __len__(self) -> int:
        return len(set(self._built) | set(self._lazy))


class _KooperantGroup(TyperGroup):
    """The ``kooperant`` group, whose heavy sub-commands load only when called or listed."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(
            self.commands, {"server": _server_command, "demo": _demo_command}
        )

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    cls=_KooperantGroup, help=_("help"), no_args_is_help=True, pretty_exceptions_enable=False
)
app.add_typer(agent_app, name="agent", help=_("agent"))
app.add_typer(adapter_app, name="adapter", help=_("adapter"))


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
