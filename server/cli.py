"""Placeholder replaced by the real sub-commands."""

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def run() -> None:
    """Run."""
