"""``kooperant demo``: everything on one machine, with no services to install."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from kooperant.demo.runner import DemoAddresses, run_demo
from kooperant.i18n import Catalog

_ = Catalog(
    {
        "help": {
            "pl": "Uruchom pokaz: symulowany park maszyn OPC UA, broker MQTT, serwer i agent.",
            "en": "Run the demo: a simulated OPC UA machine park, MQTT broker, server and agent.",
        },
        "port": {"pl": "Port HTTP panelu i API.", "en": "HTTP port of the dashboard and API."},
        "duration": {
            "pl": "Zakończ po tylu sekundach (domyślnie: do Ctrl+C).",
            "en": "Stop after this many seconds (default: run until Ctrl+C).",
        },
        "data_dir": {
            "pl": "Folder na bazę SQLite i plan produkcji pokazu (domyślnie: tymczasowy).",
            "en": "Folder for the demo's SQLite database and plan (default: a temporary one).",
        },
        "ready": {
            "pl": (
                "kooperant demo działa.\n"
                "  Panel:      {dashboard}\n"
                "  API:        {api}?kind=machine\n"
                "  Broker:     {broker}\n"
                "  OPC UA:     {opcua}\n"
                "  Baza:       {database}\n"
                "Zatrzymanie: Ctrl+C."
            ),
            "en": (
                "kooperant demo is running.\n"
                "  Dashboard:  {dashboard}\n"
                "  API:        {api}?kind=machine\n"
                "  Broker:     {broker}\n"
                "  OPC UA:     {opcua}\n"
                "  Database:   {database}\n"
                "Stop with Ctrl+C."
            ),
        },
        "stopped": {"pl": "Pokaz zatrzymany.", "en": "Demo stopped."},
        "bad_duration": {
            "pl": "Nieprawidłowy czas --duration {value}: podaj liczbę sekund większą od zera.",
            "en": "Invalid --duration {value}: give a number of seconds greater than zero.",
        },
    }
)


def demo(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help=_("port"))] = 8765,
    duration: Annotated[float | None, typer.Option("--duration", help=_("duration"))] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", file_okay=False, help=_("data_dir"))
    ] = None,
) -> None:
    """Run the demo: a simulated OPC UA machine park, MQTT broker, server and agent."""
    if duration is not None and duration <= 0:
        typer.echo(_("bad_duration", value=duration), err=True)
        raise typer.Exit(2)

    def announce(addresses: DemoAddresses) -> None:
        typer.echo(_("ready", **vars(addresses)))

    with tempfile.TemporaryDirectory(prefix="kooperant-demo-") as scratch:
        workdir = data_dir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                run_demo(
                    http_port=port, duration_seconds=duration, workdir=workdir, on_ready=announce
                )
            )
    typer.echo(_("stopped"))


demo.__doc__ = _("help")
