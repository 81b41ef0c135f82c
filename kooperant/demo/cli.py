"""Placeholder replaced by the demo implementation."""

import typer


def demo() -> None:
    """Run the demo."""
    raise typer.Exit(1)
