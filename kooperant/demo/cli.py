"""``kooperant demo``: everything on one machine, with no services to install."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from agent.errors import ConfigError
from kooperant.demo.runner import DemoAddresses, run_demo
from kooperant.i18n import Catalog
from server.errors import ServerError

logger = logging.getLogger(__name__)

# Exit status for invalid options or settings, as click and ``kooperant server`` use.
EXIT_INVALID_SETTINGS = 2

_ = Catalog.for_module(__name__)


def demo(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help=_("port"))] = 8765,
    duration: Annotated[float | None, typer.Option("--duration", help=_("duration"))] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", file_okay=False, help=_("data_dir"))
    ] = None,
) -> None:
    """Run the demo: a simulated OPC UA machine park, MQTT broker, server and agent."""
    # NaN fails every comparison, so "duration <= 0" alone lets it through, and inf never ends.
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        typer.echo(_("bad_duration", value=duration), err=True)
        raise typer.Exit(EXIT_INVALID_SETTINGS)

    def announce(addresses: DemoAddresses) -> None:
        typer.echo(_("ready", **vars(addresses)))

    with tempfile.TemporaryDirectory(prefix="kooperant-demo-") as scratch:
        workdir = data_dir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(KeyboardInterrupt), _user_errors():
            asyncio.run(
                run_demo(
                    http_port=port, duration_seconds=duration, workdir=workdir, on_ready=announce
                )
            )
    typer.echo(_("stopped"))


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except ServerError as error:
        logger.debug("Demo failed", exc_info=True)
        typer.echo(error.localized(), err=True)
        raise typer.Exit(EXIT_INVALID_SETTINGS) from error
    except ConfigError as error:
        logger.debug("Demo failed", exc_info=True)
        typer.echo(_("config_invalid", details=error), err=True)
        raise typer.Exit(EXIT_INVALID_SETTINGS) from error


demo.__doc__ = _("help")
