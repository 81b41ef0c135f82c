"""Which file of a configured path is the current export: the file, or the newest in a folder.

ERP systems either rewrite one file or write a new file per run (``JPK_MAG_2026-11.xml``,
``stany_20261204.csv``). A configured folder is therefore followed by taking the newest file that
matches the pattern. Files that writers use while a file is incomplete are never taken: names
ending in ``.tmp``, ``.part``, ``.partial``, ``.crdownload`` or ``~``, Office lock files
(``~$…``) and hidden files, so a writer that renames its file when complete is honoured. Any
other file is read only once its size and modification time have been stable for
``stable_seconds`` (``WatchedFile``).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from pathlib import Path

from adapters.exports.watched_file import FileVersion, WatchedFile

TEMPORARY_NAME_PATTERNS = ("*.tmp", "*.part", "*.partial", "*.crdownload", "*~", "~$*", ".*")


def is_temporary_name(name: str) -> bool:
    """Return whether ``name`` is one a writer uses while the file is incomplete."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in TEMPORARY_NAME_PATTERNS)


class ExportSource:
    """Follow a configured path and report each new, stable version of its current export file.

    ``path`` is a file, or a folder in which the newest file matching ``pattern`` (a glob such as
    ``*.csv``, matched without case) is the current one. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        path: Path,
        pattern: str,
        stable_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.pattern = pattern
        self.stable_seconds = stable_seconds
        self._clock = clock
        self._watched: WatchedFile | None = None

    @property
    def current_file(self) -> Path | None:
        """The file the last poll found, or None when there is none."""
        if self._watched is None or not self._watched.exists:
            return None
        return self._watched.path

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    def poll(self) -> FileVersion | None:
        """Return the current file's version once it is new and stable, else None.

        Raises ``OSError`` when the path or folder cannot be read (for example permission denied).
        """
        current = self._find_current()
        if current is None:
            if self._watched is not None:
                self._watched.exists = False
            return None
        if self._watched is None or self._watched.path != current:
            self._watched = WatchedFile(current, self.stable_seconds, self._clock)
        return self._watched.poll()

    def seconds_until_stable(self) -> float | None:
        """Return how long until a pending version can be ready, or None when none is pending."""
        return None if self._watched is None else self._watched.seconds_until_stable()

    def current_version(self) -> FileVersion | None:
        """Stat the current file again; None when it is gone."""
        return None if self._watched is None else self._watched.current_version()

    def _find_current(self) -> Path | None:
        try:
            if not self.path.is_dir():
                return self.path if self.path.exists() else None
        except OSError:
            return None
        return self._newest_in_folder()

    def _newest_in_folder(self) -> Path | None:
        newest: tuple[int, str] | None = None
        newest_path: Path | None = None
        with os.scandir(self.path) as entries:
            for entry in entries:
                if is_temporary_name(entry.name):
                    continue
                if not fnmatch.fnmatchcase(entry.name.lower(), self.pattern.lower()):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    key = (entry.stat().st_mtime_ns, entry.name)
                except FileNotFoundError:
                    continue
                if newest is None or key > newest:
                    newest, newest_path = key, Path(entry.path)
        return newest_path
