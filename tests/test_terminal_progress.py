"""Tests of ``kooperant.terminal_progress``, drawn on a rich console that writes to a buffer."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

import pytest
from rich.console import Console

from kooperant.terminal_progress import TerminalProgress


def terminal(buffer: io.StringIO) -> Console:
    return Console(file=buffer, force_terminal=True, width=120)


@pytest.fixture
def stderr_handler() -> Iterator[logging.StreamHandler[TextIO]]:
    """Add a root handler that writes to ``sys.stderr``, as ``kooperant`` configures logging."""
    handler: logging.StreamHandler[TextIO] = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_progress_draws_on_terminal() -> None:
    buffer = io.StringIO()

    with TerminalProgress(console=terminal(buffer)) as display:
        display.show("browse", "Finding machines, found so far: 7 machines")

    assert display.enabled
    assert "Finding machines, found so far: 7 machines" in buffer.getvalue()


def test_progress_silent_without_terminal() -> None:
    buffer = io.StringIO()

    with TerminalProgress(console=Console(file=buffer)) as display:
        display.show("browse", "Finding machines")

    assert not display.enabled
    assert buffer.getvalue() == ""


def test_force_color_without_terminal_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest captures stderr, so it is not a terminal here.
    monkeypatch.setenv("FORCE_COLOR", "1")

    with TerminalProgress() as display:
        display.show("browse", "Finding machines")

    assert not sys.stderr.isatty()
    assert not display.enabled


def test_progress_disabled_on_terminal() -> None:
    buffer = io.StringIO()

    with TerminalProgress(enabled=False, console=terminal(buffer)) as display:
        display.show("browse", "Finding machines")

    assert buffer.getvalue() == ""


def test_log_lines_go_through_console(
    stderr_handler: logging.StreamHandler[TextIO],
) -> None:
    buffer = io.StringIO()
    logger = logging.getLogger("tests.terminal_progress")
    logger.setLevel(logging.INFO)

    with TerminalProgress(console=terminal(buffer)) as display:
        display.show("file", "Reading stany.csv", completed=10, total=100)
        logger.info("adapter 'stany': read stock list")
        assert stderr_handler.stream is not sys.stderr

    assert stderr_handler.stream is sys.stderr
    assert "adapter 'stany': read stock list" in buffer.getvalue()


def test_removed_line_not_drawn_again() -> None:
    buffer = io.StringIO()

    with TerminalProgress(count_bytes=True, console=terminal(buffer)) as display:
        display.show("a.epp", "Reading a.epp", completed=5, total=10)
        display.remove("a.epp")
        display.remove("a.epp")
        drawn_before = buffer.getvalue().count("Reading a.epp")
        display.show("b.epp", "Reading b.epp", completed=1, total=10)

    assert buffer.getvalue().count("Reading a.epp") == drawn_before
    assert "Reading b.epp" in buffer.getvalue()
