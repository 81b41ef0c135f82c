"""Polling a SQLite file for commits of other connections, as the agent's readers of its tables do.

``kooperant agent withdraw``, ``accept`` and ``release`` write the audit-log file from another
process. The running agent compares SQLite's ``PRAGMA data_version`` on each poll and reads the
table again only when it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.errors import AuditLogError

logger = logging.getLogger(__name__)


class TableWatch:
    """The last ``data_version`` seen of one table's file, and whether reading it fails.

    A failed read is logged at ERROR once, with ``name``, and at INFO once when reading works
    again, so a file that stays unreadable does not fill the log.
    """

    def __init__(self, data_version: Callable[[], int], name: str) -> None:
        self._data_version = data_version
        self._name = name
        self._version: int | None = None
        self._failing = False

    def changed(self) -> bool:
        """Return whether another connection committed since the last call.

        Returns False when ``data_version`` cannot be read, after logging the failure.
        """
        try:
            version = self._data_version()
        except AuditLogError as error:
            self.failed(error)
            return False
        if version == self._version:
            return False
        self._version = version
        return True

    def failed(self, error: AuditLogError) -> None:
        if not self._failing:
            logger.error("Cannot read %s, keeping the last read: %s", self._name, error)
            self._failing = True

    def succeeded(self) -> None:
        if self._failing:
            logger.info("Reading %s works again", self._name)
            self._failing = False
