"""The table of the owner's withdrawals in the agent's local SQLite file."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.audit import AuditLog
from agent.errors import AuditLogError
from agent.withdrawals import (
    OwnerWithdrawal,
    WithdrawalReader,
    WithdrawalTable,
    owner_withdrawal,
)
from kooperant.protocol import offer_topic

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_table_add_read_remove(tmp_path: Path) -> None:
    with WithdrawalTable(tmp_path / "audit.db") as table:
        added = table.add("cnc-1", True, NOW.astimezone(ZoneInfo("Europe/Warsaw")))
        stored = table.read()
        removed = table.remove("cnc-1")
        removed_again = table.remove("cnc-1")
        left = table.read()

    assert added == OwnerWithdrawal("cnc-1", True, NOW)
    assert stored == {"cnc-1": added}
    assert stored["cnc-1"].withdrawn_at.utcoffset() == timedelta(0)
    assert removed
    assert not removed_again
    assert left == {}


def test_table_add_replaces_record(tmp_path: Path) -> None:
    with WithdrawalTable(tmp_path / "audit.db") as table:
        table.add("cnc-1", True, NOW)
        table.add("cnc-1", False, NOW + timedelta(hours=1))
        stored = table.read()

    assert stored == {"cnc-1": OwnerWithdrawal("cnc-1", False, NOW + timedelta(hours=1))}


def test_table_shares_file_with_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    topic = offer_topic("pomorskie-metal", "acme", "cnc-1")
    with AuditLog(path) as log:
        log.record(topic, b"{}", NOW)
    with WithdrawalTable(path) as table:
        table.add("cnc-1", False, NOW)

    with AuditLog(path) as log, WithdrawalTable(path) as table:
        rows = log.count()
        stored = set(table.read())

    assert rows == 1
    assert stored == {"cnc-1"}


def test_data_version_changes_on_other_commit(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with WithdrawalTable(path) as watched, WithdrawalTable(path) as other:
        start = watched.data_version()
        watched.add("own-write", False, NOW)
        after_own = watched.data_version()
        other.add("cnc-1", False, NOW)
        after_other = watched.data_version()

    assert after_own == start
    assert after_other != start


def test_table_unopenable_path_raises(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "audit.db"

    with pytest.raises(AuditLogError) as info:
        WithdrawalTable(path)

    assert str(info.value).startswith(f"audit log {path}: cannot open the file")


def test_owner_withdrawal_matches_public_id() -> None:
    record = OwnerWithdrawal("frezarka-5osi", False, NOW)
    withdrawals = {"frezarka-5osi": record}

    assert owner_withdrawal(withdrawals, "cnc-5ax-01", "frezarka-5osi") == record
    assert owner_withdrawal(withdrawals, "frezarka-5osi", None) == record
    assert owner_withdrawal(withdrawals, "cnc-5ax-01", None) is None
    assert owner_withdrawal(withdrawals, "cnc-5ax-01", "cnc-5ax-01") is None


def test_reader_poll_sees_other_commit(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with WithdrawalTable(path) as table, WithdrawalTable(path) as command:
        reader = WithdrawalReader(table)
        first = reader.poll()
        unchanged = reader.poll()
        command.add("cnc-1", True, NOW)
        added = reader.poll()
        command.remove("cnc-1")
        removed = reader.poll()

    assert not first
    assert not unchanged
    assert added
    assert removed
    assert reader.current == {}


def test_reader_keeps_last_on_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = WithdrawalTable(tmp_path / "audit.db")
    table.add("cnc-1", False, NOW)
    reader = WithdrawalReader(table)
    reader.read()
    table.close()

    with caplog.at_level(logging.ERROR, logger="agent.withdrawals"):
        polled = reader.poll()
        read = reader.read()

    assert not polled
    assert not read
    assert set(reader.current) == {"cnc-1"}
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "Cannot read the owner's withdrawals, keeping the last read: audit log "
    )
