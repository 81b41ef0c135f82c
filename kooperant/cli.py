"""The ``kooperant`` command: ``agent``, ``server``, ``adapter`` and ``demo`` sub-commands."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from agent.cli import app as agent_app
from kooperant import __version__, cli_translations
from kooperant.adapter_cli import app as adapter_app
from kooperant.demo.cli import demo
from kooperant.i18n import Catalog
from server.cli import app as server_app

_ = Catalog.for_module(__name__)

# These libraries log every step (each OPC UA node added, each MQTT session transition) at
# INFO; kooperant logs the outcomes itself, and --verbose brings the detail back.
CHATTY_LIBRARIES = ("alembic", "amqtt", "asyncua", "transitions")

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
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


def main() -> None:
    """Run the command line; the console script ``kooperant`` points here."""
    # Typer writes its own help layout and usage errors in English. The hooks translate them
    # on every call, and are installed here, not at import, so importing the CLI module leaves
    # typer unchanged for other code in the process.
    cli_translations.install()
    app()
