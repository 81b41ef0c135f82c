"""Exceptions raised by adapters.

AdapterError                 root of everything an adapter raises on purpose
├── AdapterSettingsError     settings are invalid; the operator must fix the config
├── UnknownAdapterError      no adapter is registered under the requested name
├── SourceUnavailableError   the source (server, file) cannot be reached now; retried with backoff
└── ExportFormatError        an export file cannot be read; names the file, line and column

Errors of third-party libraries are converted to these at the adapter boundary, with the original
exception chained as the cause.
"""

from __future__ import annotations

from pathlib import Path


class AdapterError(Exception):
    """Root of the errors an adapter raises on purpose."""


class AdapterSettingsError(AdapterError):
    """Raised when adapter settings are invalid; the operator must change the config."""


class UnknownAdapterError(AdapterError):
    """Raised when no adapter is registered under the requested type name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown adapter type {name!r}; installed types: {', '.join(known)}")


class SourceUnavailableError(AdapterError):
    """Raised when a source cannot be reached now; the caller retries later."""


class ExportFormatError(AdapterError):
    """Raised when an export file cannot be read, naming where the problem is."""

    def __init__(
        self,
        path: Path,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.reason = message
        where = str(path)
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f" (column {column!r})"
        super().__init__(f"{where}: {message}")
