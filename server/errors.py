"""Exceptions of the aggregator server.

Each error carries the id of its user-facing message in ``server.messages.MESSAGES`` and the
fields for it, so the CLI can show it in Polish or English. ``str(error)`` is the English text.

    ServerError                  root of every error raised by ``server``
    ├── InvalidSettingError      a setting (database URL, broker URL, cluster id) is invalid:
    │                            the operator must fix it
    ├── DatabaseUnavailableError the database cannot be opened or reached: fix the server or
    │                            the URL, then start again
    ├── SchemaOutdatedError      the database schema is older than this version: run
    │                            ``kooperant server migrate``
    ├── StorageError             a read or write failed while running; the caller may retry
    └── BrokerPortInUseError     the embedded broker cannot listen because the port is taken
"""

from __future__ import annotations

from kooperant.i18n import Language
from server.messages import MESSAGES


class ServerError(Exception):
    """Root of the server's exceptions; the text comes from the message catalogue."""

    def __init__(self, message_id: str, **fields: object) -> None:
        self.message_id = message_id
        self.fields = fields
        super().__init__(MESSAGES(message_id, "en", **fields))

    def localized(self, language: Language | None = None) -> str:
        """Return the message in ``language`` (default: the current user language)."""
        return MESSAGES(self.message_id, language, **self.fields)


class InvalidSettingError(ServerError):
    """Raised for a setting the operator must correct before the server can start."""


class DatabaseUnavailableError(ServerError):
    """Raised when the database cannot be opened or reached."""


class SchemaOutdatedError(ServerError):
    """Raised when the database schema is not at the revision this version needs."""


class StorageError(ServerError):
    """Raised when a database read or write fails after the server started."""


class BrokerPortInUseError(ServerError):
    """Raised when the embedded broker's port is already taken."""
