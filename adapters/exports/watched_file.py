"""Picking up new versions of a file that another program rewrites, without reading it half-written.

A version is identified by size, modification time and inode. It counts as ready once a poll has
seen it unchanged for ``stable_seconds``, so an export that is still growing is not read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileVersion:
    """Identity of one version of a file."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileVersion:
        return cls(result.st_size, result.st_mtime_ns, result.st_ino)


class StableVersion:
    """Report each new version once it has stayed the same for ``stable_seconds`` of ``clock``."""

    def __init__(self, stable_seconds: float, clock: Callable[[], float]) -> None:
        self.stable_seconds = stable_seconds
        self._clock = clock
        self._candidate: FileVersion | None = None
        self._candidate_since = 0.0
        self._delivered: FileVersion | None = None

    def observe(self, version: FileVersion | None) -> FileVersion | None:
        """Record the version seen now (None: nothing there); return it once it is stable.

        The same version is not returned twice in a row.
        """
        if version is None:
            self._candidate = None
            return None

        now = self._clock()
        if version != self._candidate:
            self._candidate = version
            self._candidate_since = now
        if version == self._delivered or now - self._candidate_since < self.stable_seconds:
            return None

        self._delivered = version
        return version

    def seconds_until_stable(self) -> float | None:
        """Return how long the version seen last must stay unchanged to be ready, or None.

        None means that no new version is pending: nothing is there or it was already returned.
        """
        if self._candidate is None or self._candidate == self._delivered:
            return None
        return max(0.0, self._candidate_since + self.stable_seconds - self._clock())


class WatchedFile:
    """Follow one path and report each new version once, after it stopped changing.

    The caller calls ``poll`` once per poll interval. ``clock`` returns seconds on a monotonic
    scale, and tests pass a controlled one.
    """

    def __init__(
        self,
        path: Path,
        stable_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.stable_seconds = stable_seconds
        self.exists = False
        self._versions = StableVersion(stable_seconds, clock)

    def poll(self) -> FileVersion | None:
        """Return the current version if it is new and has been stable long enough, else None.

        The same version is not returned twice in a row. Errors of ``os.stat`` other than a
        missing file (for example permission denied) propagate as ``OSError``.
        """
        version = self.current_version()
        self.exists = version is not None
        return self._versions.observe(version)

    def seconds_until_stable(self) -> float | None:
        """Return how long the version seen last must stay unchanged to be ready, or None.

        None means that no new version is pending: the file is missing or was already returned.
        """
        return self._versions.seconds_until_stable()

    def current_version(self) -> FileVersion | None:
        """Stat the file again; return its version, or None when it is missing."""
        try:
            return FileVersion.of(self.path.stat())
        except FileNotFoundError:
            return None
