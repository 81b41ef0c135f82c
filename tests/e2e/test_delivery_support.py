"""The helpers of the delivery tests: the counts table and a PostgreSQL of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.delivery_report import DeliveryReport
from tests.support.postgres import OwnPostgres


class Terminal:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str | None = None) -> None:
        self.lines.append(f"{sep * 3} {title} {sep * 3}")

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_report_table_aligns_counts() -> None:
    report = DeliveryReport()
    report.record("broker killed", sent=1200, stored=1200, duplicated=0, rejected=0, lost=0)
    report.record("wrong member", sent=2, stored=0, duplicated=0, rejected=2, lost=2)
    terminal = Terminal()

    report.write(terminal)

    assert terminal.lines[0] == "=== delivery counts ==="
    assert terminal.lines[1].split() == ["test", "sent", "stored", "duplicated", "rejected", "lost"]
    assert terminal.lines[2].split() == ["broker", "killed", "1200", "1200", "0", "0", "0"]
    assert terminal.lines[3].split() == ["wrong", "member", "2", "0", "0", "2", "2"]
    assert len({len(line) for line in terminal.lines[1:]}) == 1


def test_report_without_rows_prints_nothing() -> None:
    terminal = Terminal()

    DeliveryReport().write(terminal)

    assert terminal.lines == []


def test_report_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="lost of broken must be an int >= 0, got -1"):
        DeliveryReport().record("broken", sent=1, stored=1, duplicated=0, rejected=0, lost=-1)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    server = OwnPostgres(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.remove()


def select_one(server: OwnPostgres) -> int:
    dsn = server.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, connect_timeout=5) as connection:
        row = connection.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def test_own_postgres_survives_kill_and_stop(own_postgres: OwnPostgres) -> None:
    dsn = own_postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (value int)")
        connection.execute("INSERT INTO kept VALUES (7)")

    own_postgres.kill()
    with pytest.raises(psycopg.OperationalError):
        select_one(own_postgres)
    own_postgres.start()
    own_postgres.stop()
    own_postgres.start()

    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT value FROM kept").fetchone()
    assert row == (7,)
