"""Counts of every delivery test, printed as one table at the end of the pytest output.

Each delivery scenario records how many messages its agents sent and how many of them the
aggregator stored, stored more than once, rejected or never stored. The ``delivery_report``
fixture (``tests/conftest.py``) returns the session's ``DeliveryReport``, and the
``pytest_terminal_summary`` hook prints it, so CI shows the counts of passing runs as well.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, select

from server.storage import parse_database_url
from server.storage.tables import offer_history, rejected_messages

TITLE = "delivery counts"


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    """One scenario's counts; ``lost`` are sent message ids that were never stored."""

    test: str
    sent: int
    stored: int
    duplicated: int
    rejected: int
    lost: int


class _TerminalWriter(Protocol):
    def write_sep(self, sep: str, title: str | None = None) -> None: ...

    def write_line(self, line: str) -> None: ...


class DeliveryReport:
    """The counts recorded during one pytest session, in the order they were recorded."""

    def __init__(self) -> None:
        self.rows: list[DeliveryCounts] = []

    def record(
        self, test_name: str, *, sent: int, stored: int, duplicated: int, rejected: int, lost: int
    ) -> DeliveryCounts:
        """Add one scenario's counts; every count must be 0 or more."""
        counts = DeliveryCounts(test_name, sent, stored, duplicated, rejected, lost)
        for field in fields(DeliveryCounts)[1:]:
            value = getattr(counts, field.name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{field.name} of {test_name} must be an int >= 0, got {value!r}")
        self.rows.append(counts)
        return counts

    def table(self) -> list[str]:
        """Return the counts as aligned text lines, a header line first."""
        header = ("test", "sent", "stored", "duplicated", "rejected", "lost")
        cells = [header] + [
            (row.test, *(str(getattr(row, name)) for name in header[1:])) for row in self.rows
        ]
        widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
        return [
            "  ".join(
                cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
            for line in cells
        ]

    def write(self, terminal: _TerminalWriter) -> None:
        """Print the table under a ``delivery counts`` separator; nothing when none was recorded."""
        if not self.rows:
            return
        terminal.write_sep("=", TITLE)
        for line in self.table():
            terminal.write_line(line)


SESSION_REPORT = DeliveryReport()


def sent_offer_ids(audit_log: Path) -> set[str]:
    """Return the message ids of the offers an agent's audit log records as acknowledged."""
    with closing(sqlite3.connect(f"file:{audit_log}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT payload FROM audit_messages WHERE topic LIKE '%/offers/%' AND payload != ''"
        ).fetchall()
    return {_message_id(payload) for (payload,) in rows}


def stored_offer_ids(database_url: str, cluster: str) -> list[str]:
    """Return the message id of every offer history row of ``cluster``, repeats included.

    History rows of offers without an envelope (schema 1.0) have no message id and are left out.
    """
    engine = create_engine(parse_database_url(database_url))
    try:
        with engine.connect() as connection:
            ids = connection.execute(
                select(offer_history.c.message_id).where(
                    offer_history.c.cluster == cluster, offer_history.c.message_id.is_not(None)
                )
            ).scalars()
            return list(ids)
    finally:
        engine.dispose()


def pending_offer_ids(audit_log: Path) -> set[str]:
    """Return the message ids of the offers still queued in an agent's outbox."""
    with closing(sqlite3.connect(f"file:{audit_log}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT message_id FROM outbox WHERE topic LIKE '%/offers/%' AND length(payload) > 0"
        ).fetchall()
    return {message_id for (message_id,) in rows}


def rejected_count(database_url: str, cluster: str) -> int:
    """Return how many rejected messages were on topics of ``cluster``."""
    engine = create_engine(parse_database_url(database_url))
    try:
        with engine.connect() as connection:
            topics = connection.execute(select(rejected_messages.c.topic)).scalars().all()
    finally:
        engine.dispose()
    prefix = f"kooperant/v1/{cluster}/"
    return sum(1 for topic in topics if topic.startswith(prefix))


def count_delivery(
    test_name: str, sent: Iterable[str], stored: Iterable[str], rejected: int
) -> DeliveryCounts:
    """Count ``sent`` message ids against the ``stored`` ones (repeats included)."""
    sent_ids = set(sent)
    stored_counts = Counter(message_id for message_id in stored if message_id in sent_ids)
    return DeliveryCounts(
        test=test_name,
        sent=len(sent_ids),
        stored=len(stored_counts),
        duplicated=sum(stored_counts.values()) - len(stored_counts),
        rejected=rejected,
        lost=len(sent_ids - set(stored_counts)),
    )


def _message_id(payload: str | bytes) -> str:
    message_id = json.loads(payload).get("message_id")
    if not isinstance(message_id, str):
        raise AssertionError(f"offer without message_id: {payload[:200]!r}")
    return message_id
