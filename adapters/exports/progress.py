"""Progress of reading export files, reported from the worker thread that parses them.

``ExportAdapter`` runs ``parse`` inside ``reporting(reporter)``. The readers of this package open
the file whose records they parse with ``open_export``, which counts the bytes read while a
reporter is active in the current context. ``asyncio.to_thread`` copies the context, so the
reporter set in the worker thread reaches every reader that ``parse`` calls. Without a reporter
``open_export`` returns a plain buffered file.

The count is taken per raw read of the file, and ``ProgressReporter`` passes at most one update
per ``interval_seconds`` to its callback. A CSV file is read as text in raw reads of about 8 KiB
(measured with CPython 3.11), so 100 MB cost about 12,000 clock readings. Reads that only check a
file (the encoding check of ``text_files``) are not counted.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

READ_BUFFER_BYTES = 64 * 1024
DEFAULT_INTERVAL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class ReadProgress:
    """How much of one export file a parse has read: bytes so far of the file's size."""

    path: Path
    bytes_read: int
    total_bytes: int
    done: bool = False
    """True on the last update, sent when the reader closes the file without an error."""


ReadProgressCallback = Callable[[ReadProgress], None]


class ProgressReporter:
    """Pass the progress of export reads to ``callback``, at most every ``interval_seconds``.

    The update that completes a file is always passed on. ``clock`` returns seconds on a
    monotonic scale, and tests pass a controlled one.
    """

    def __init__(
        self,
        callback: ReadProgressCallback,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_report = clock()

    def update(self, path: Path, bytes_read: int, total_bytes: int) -> None:
        """Report ``bytes_read`` of ``path`` unless the interval since the last report is short."""
        now = self._clock()
        with self._lock:
            if now - self._last_report < self._interval:
                return
            self._last_report = now
        self._callback(ReadProgress(path, min(bytes_read, total_bytes), total_bytes))

    def finish(self, path: Path, total_bytes: int) -> None:
        """Report that ``path`` was read completely."""
        with self._lock:
            self._last_report = self._clock()
        self._callback(ReadProgress(path, total_bytes, total_bytes, done=True))


_reporter: ContextVar[ProgressReporter | None] = ContextVar("export_progress", default=None)


@contextmanager
def reporting(reporter: ProgressReporter | None) -> Iterator[None]:
    """Make ``open_export`` count the reads for ``reporter`` inside the block, in this context."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


class _CountingFile(io.FileIO):
    """A file opened for reading that passes the number of bytes read so far to a reporter."""

    def __init__(self, path: Path, reporter: ProgressReporter) -> None:
        super().__init__(path, "rb")
        self.path = path
        self.total_bytes = os.fstat(self.fileno()).st_size
        self.bytes_read = 0
        self._reporter = reporter

    def readinto(self, buffer: Any) -> int | None:
        count = super().readinto(buffer)
        if count:
            # Bytes read, not the position, so that a reader that seeks (a ZIP archive read
            # from its directory at the end) still moves forward.
            self.bytes_read += count
            self._reporter.update(self.path, self.bytes_read, self.total_bytes)
        return count


@contextmanager
def open_export(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading in binary mode, counting the bytes read for the active reporter.

    When the block ends without an exception, the reporter gets a final update with the whole
    size, because a reader may stop before the end (a ZIP archive, a trailing blank line).
    Raises ``OSError`` as ``open`` does.
    """
    reporter = _reporter.get()
    if reporter is None:
        with path.open("rb", buffering=READ_BUFFER_BYTES) as plain:
            yield plain
        return

    raw = _CountingFile(path, reporter)
    with io.BufferedReader(raw, READ_BUFFER_BYTES) as stream:
        yield stream
    reporter.finish(path, raw.total_bytes)


@contextmanager
def open_export_text(path: Path, codec: str) -> Iterator[io.TextIOWrapper]:
    """Open ``path`` as text in ``codec`` with universal newlines off, as ``csv`` needs."""
    with open_export(path) as binary, io.TextIOWrapper(binary, encoding=codec, newline="") as text:
        yield text


LOG_INTERVAL_SECONDS = 10.0


def progress_logger(logger: logging.Logger, adapter: str, description: str) -> ReadProgressCallback:
    """Return a callback that logs each update at INFO, for a reporter without a terminal.

    Give its ``ProgressReporter`` ``interval_seconds=LOG_INTERVAL_SECONDS``, so that only a parse
    longer than that logs, once per interval. The last update is not logged, because the adapter
    logs the finished read itself.
    """

    def log(progress: ReadProgress) -> None:
        if progress.done:
            return
        share = progress.bytes_read / progress.total_bytes if progress.total_bytes else 1.0
        logger.info(
            "adapter %r: reading the %s %s: %.1f of %.1f MB (%.0f%%)",
            adapter,
            description,
            progress.path,
            progress.bytes_read / 1e6,
            progress.total_bytes / 1e6,
            share * 100,
        )

    return log
