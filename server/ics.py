"""A minimal iCalendar (RFC 5545) writer for an offer's free intervals.

Lines end with CRLF and are folded at 75 octets without splitting a UTF-8 character. TEXT
values escape backslash, semicolon, comma and newlines. Times are UTC (``...Z``). The UID of an
event is derived from the offer's key and the interval's start, so a calendar program updates an
interval's event instead of adding a copy when the feed is fetched again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from kooperant.intervals import Interval

PRODID = "-//kooperant//free capacity feed//EN"
MAX_LINE_OCTETS = 75


def escape_text(value: str) -> str:
    """Escape a TEXT value: ``\\``, ``;``, ``,`` and newlines."""
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return escaped.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold_line(line: str) -> str:
    """Fold ``line`` into CRLF-joined parts of at most 75 octets, continuations starting " "."""
    parts: list[str] = []
    current = ""
    current_octets = 0
    limit = MAX_LINE_OCTETS
    for character in line:
        size = len(character.encode("utf-8"))
        if current_octets + size > limit:
            parts.append(current)
            current = " "
            current_octets = 1
        current += character
        current_octets += size
    parts.append(current)
    return "\r\n".join(parts)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_uid(key: tuple[str, str, str], interval: Interval) -> str:
    digest = hashlib.sha256("/".join((*key, _time(interval.start))).encode()).hexdigest()
    return f"{digest[:32]}@kooperant"


def calendar(
    key: tuple[str, str, str],
    summary: str,
    description: str,
    intervals: Sequence[Interval],
    stamp: datetime,
    calendar_name: str,
) -> str:
    """Return a VCALENDAR with one VEVENT per interval of ``intervals``."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(calendar_name)}",
    ]
    for interval in intervals:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{event_uid(key, interval)}",
            f"DTSTAMP:{_time(stamp)}",
            f"DTSTART:{_time(interval.start)}",
            f"DTEND:{_time(interval.end)}",
            f"SUMMARY:{escape_text(summary)}",
            f"DESCRIPTION:{escape_text(description)}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + "\r\n" for line in lines)
