"""TableWatch: commits of other connections seen by data_version, failures logged once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.errors import AuditLogError
from agent.table_watch import TableWatch


class Versions:
    """A data_version source that returns the next value or raises while ``failing``."""

    def __init__(self) -> None:
        self.value = 1
        self.failing = False

    def __call__(self) -> int:
        if self.failing:
            raise AuditLogError(Path("audit.db"), "disk I/O error")
        return self.value


def test_changed_only_after_commit() -> None:
    versions = Versions()
    watch = TableWatch(versions, "the rows")

    first = watch.changed()
    again = watch.changed()
    versions.value = 2
    after_commit = watch.changed()

    assert first is True
    assert again is False
    assert after_commit is True


def test_failure_logged_once_until_recovered(caplog: pytest.LogCaptureFixture) -> None:
    versions = Versions()
    watch = TableWatch(versions, "the rows")
    versions.failing = True

    with caplog.at_level(logging.INFO, logger="agent.table_watch"):
        results = [watch.changed(), watch.changed()]
        versions.failing = False
        watch.succeeded()
        watch.succeeded()

    messages = [record.getMessage() for record in caplog.records]
    assert results == [False, False]
    assert len(messages) == 2
    assert messages[0].startswith("Cannot read the rows, keeping the last read: audit log")
    assert messages[1] == "Reading the rows works again"
