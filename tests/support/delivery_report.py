"""Counts of every delivery test, printed as one table at the end of the pytest output.

Each delivery scenario records how many messages its agents sent and how many of them the
aggregator stored, stored more than once, rejected or never stored. The ``delivery_report``
fixture (``tests/conftest.py``) returns the session's ``DeliveryReport``, and the
``pytest_terminal_summary`` hook prints it, so CI shows the counts of passing runs as well.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

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
