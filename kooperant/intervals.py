"""Half-open time intervals ``[start, end)`` on timezone-aware datetimes.

The availability arithmetic of the agent and the time-window filters of the server both work on
sorted, non-overlapping lists of these intervals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, order=True, slots=True)
class Interval:
    """A span of time from ``start`` (inclusive) to ``end`` (exclusive), both timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"interval {self.start} .. {self.end} has a naive datetime")
        if self.end < self.start:
            raise ValueError(f"interval ends before it starts: {self.start} .. {self.end}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def hours(self) -> float:
        return self.duration.total_seconds() / 3600

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


def normalize(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort ``intervals``, merge those that overlap or touch, and drop empty ones."""
    merged: list[Interval] = []
    for interval in sorted(item for item in intervals if item.end > item.start):
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, interval.end))
        else:
            merged.append(interval)
    return merged


def subtract(base: Iterable[Interval], removed: Iterable[Interval]) -> list[Interval]:
    """Return the parts of ``base`` not covered by any interval of ``removed``."""
    holes = normalize(removed)
    result: list[Interval] = []
    for interval in normalize(base):
        cursor = interval.start
        for hole in holes:
            if hole.end <= cursor or hole.start >= interval.end:
                continue
            if hole.start > cursor:
                result.append(Interval(cursor, hole.start))
            cursor = max(cursor, hole.end)
            if cursor >= interval.end:
                break
        if cursor < interval.end:
            result.append(Interval(cursor, interval.end))
    return result


def clip(intervals: Iterable[Interval], window: Interval) -> list[Interval]:
    """Return ``intervals`` cut to ``window``, dropping those outside it."""
    result = []
    for interval in normalize(intervals):
        start = max(interval.start, window.start)
        end = min(interval.end, window.end)
        if end > start:
            result.append(Interval(start, end))
    return result


def total_hours(intervals: Iterable[Interval]) -> float:
    """Return the hours covered by ``intervals``, counting overlaps once."""
    return sum(interval.hours for interval in normalize(intervals))
