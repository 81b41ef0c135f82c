"""Progress lines on stderr for commands that make a person wait, drawn with ``rich.progress``.

``TerminalProgress`` draws nothing unless stderr is an interactive terminal, so pipes, CI logs
and redirected output stay as they were. The lines are removed when the block ends, and the
command then prints its result as usual. Every method may be called from any thread, because
``rich.progress.Progress`` guards its tasks with a lock and redraws from its own thread.

While the lines are drawn, the root logger's handlers that write to stderr write through the
rich console instead, which prints each log line above the progress lines. Written directly, a
log line would land inside them and leave parts of old lines on the screen.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class TerminalProgress:
    """Progress lines on stderr, one per task, shown only when stderr is a terminal.

    With ``count_bytes`` each line has a bar and "read of total" in bytes, for file reads.
    Without it a line is its text and the elapsed time, for work whose total is not known.
    """

    def __init__(
        self, *, enabled: bool = True, count_bytes: bool = False, console: Console | None = None
    ) -> None:
        """``enabled=False`` turns the lines off on a terminal too, as ``--json`` output does."""
        # Only isatty counts, so FORCE_COLOR, which CI systems set for colored logs, does not
        # draw lines into a CI log the way rich would by default.
        self.console = console or Console(stderr=True, force_terminal=sys.stderr.isatty())
        terminal = self.console.is_terminal and not self.console.is_dumb_terminal
        self.enabled = enabled and terminal
        columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
        if count_bytes:
            columns += [BarColumn(), DownloadColumn()]
        columns.append(TimeElapsedColumn())
        # The log handlers are redirected one by one, because they keep the stderr object they
        # were given and would not see a replaced sys.stderr.
        self._progress = Progress(
            *columns,
            console=self.console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[object, TaskID] = {}
        self._lock = threading.Lock()
        self._redirected: list[logging.StreamHandler[TextIO]] = []

    def __enter__(self) -> TerminalProgress:
        if self.enabled:
            self._progress.start()
            self._redirect_log_handlers()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.enabled:
            for handler in self._redirected:
                handler.setStream(sys.stderr)
            self._redirected.clear()
            self._progress.stop()

    def _redirect_log_handlers(self) -> None:
        proxy = FileProxy(self.console, sys.stderr)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                handler.setStream(proxy)
                self._redirected.append(handler)

    def show(
        self,
        key: object,
        description: str,
        *,
        completed: int | None = None,
        total: int | None = None,
    ) -> None:
        """Show ``description`` on the line of ``key``, adding the line when it is new."""
        if not self.enabled:
            return
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                self._tasks[key] = self._progress.add_task(
                    description, completed=completed or 0, total=total
                )
                return
        self._progress.update(task, description=description, completed=completed, total=total)

    def remove(self, key: object) -> None:
        """Remove the line of ``key``, if it has one."""
        if not self.enabled:
            return
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is not None:
            self._progress.remove_task(task)
