"""The current export file of a configured path: the file itself, or the newest in a folder.

ERP systems either rewrite one file or write a new file per run (``JPK_MAG_2026-11.xml``,
``stany_20261204.csv``). A configured folder is therefore followed by taking the newest file that
matches the pattern. Files that writers use while a file is incomplete are never taken: names
ending in ``.tmp``, ``.part``, ``.partial``, ``.crdownload`` or ``~``, Office lock files
(``~$…``) and hidden files, so a writer that renames its file when complete is honoured. Any
other file is read only once its size and modification time have been stable for
``stable_seconds`` (``WatchedFile``).

Some programs write one file per document instead (an EDI++ export of Subiekt GT). For them
``FolderSource`` treats all matching files of the folder as one input, whose version changes when a
file is added, removed or rewritten.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from pathlib import Path

from adapters.exports.watched_file import FileVersion, StableVersion, WatchedFile

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
        # is_dir and exists return False for a missing path and raise OSError for one that
        # cannot be checked, such as a name too long for the file system.
        if not self.path.is_dir():
            return self.path if self.path.exists() else None
        return self._newest_in_folder()

    def _newest_in_folder(self) -> Path | None:
        newest: tuple[int, str] | None = None
        newest_path: Path | None = None
        for path, result in _matching_entries(self.path, self.pattern):
            key = (result.st_mtime_ns, path.name)
            if newest is None or key > newest:
                newest, newest_path = key, path
        return newest_path


def _matching_entries(folder: Path, pattern: str) -> list[tuple[Path, os.stat_result]]:
    """Return the regular files of ``folder`` matching ``pattern`` without temporary names."""
    found: list[tuple[Path, os.stat_result]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_temporary_name(entry.name):
                continue
            if not fnmatch.fnmatchcase(entry.name.lower(), pattern.lower()):
                continue
            try:
                if not entry.is_file():
                    continue
                found.append((Path(entry.path), entry.stat()))
            except FileNotFoundError:
                continue
    return found


def matching_files(path: Path, pattern: str) -> list[Path]:
    """Return ``path`` itself when it is a file, else its files matching ``pattern``, by name.

    Temporary names (see ``is_temporary_name``) are skipped. Raises ``OSError`` when the folder
    cannot be listed.
    """
    if not path.is_dir():
        return [path] if path.exists() else []
    return sorted((found for found, _ in _matching_entries(path, pattern)), key=lambda p: p.name)


class FolderSource:
    """Follow all files of a folder that match ``pattern`` as one input; see the module docstring.

    The version of the folder is the total size, the newest modification time and a digest of
    every file's name, size, modification time and inode. It is reported once it has stayed the
    same for ``stable_seconds``, so a file that is still growing holds back the whole folder.
    ``path`` may also be a single file, which is then the only member. ``current_file`` is
    ``path`` while at least one matching file exists.
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
        self._exists = False
        self._versions = StableVersion(stable_seconds, clock)

    @property
    def current_file(self) -> Path | None:
        """``path`` when the last poll found a matching file, else None."""
        return self.path if self._exists else None

    def poll(self) -> FileVersion | None:
        """Return the folder's version once it is new and stable, else None.

        Raises ``OSError`` when the folder cannot be listed (for example permission denied).
        """
        version = self.current_version()
        self._exists = version is not None
        return self._versions.observe(version)

    def seconds_until_stable(self) -> float | None:
        """Return how long until a pending version can be ready, or None when none is pending."""
        return self._versions.seconds_until_stable()

    def current_version(self) -> FileVersion | None:
        """List the folder again and return its version; None when no file matches."""
        if self.path.is_dir():
            entries = _matching_entries(self.path, self.pattern)
        else:
            try:
                entries = [(self.path, self.path.stat())]
            except FileNotFoundError:
                return None
        if not entries:
            return None
        listing = sorted(
            (path.name, result.st_size, result.st_mtime_ns, result.st_ino)
            for path, result in entries
        )
        return FileVersion(
            size=sum(item[1] for item in listing),
            mtime_ns=max(item[2] for item in listing),
            inode=hash(tuple(listing)),
        )
