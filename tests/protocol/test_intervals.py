"""Half-open interval arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kooperant.intervals import Interval, clip, normalize, subtract, total_hours


def at(hour: int, day: int = 4) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def span(start: int, end: int) -> Interval:
    return Interval(at(start), at(end))


def test_normalize_merges_overlapping_and_touching() -> None:
    assert normalize([span(8, 10), span(9, 12), span(12, 13), span(15, 16)]) == [
        span(8, 13),
        span(15, 16),
    ]


def test_normalize_drops_empty() -> None:
    assert normalize([span(8, 8)]) == []


def test_subtract_cuts_holes_and_edges() -> None:
    result = subtract([span(6, 14), span(14, 22)], [span(5, 7), span(10, 11), span(21, 23)])

    assert result == [span(7, 10), span(11, 21)]


def test_subtract_everything_leaves_nothing() -> None:
    assert subtract([span(6, 14)], [span(0, 23)]) == []


def test_clip_to_window() -> None:
    assert clip([span(6, 10), span(12, 20)], span(8, 14)) == [span(8, 10), span(12, 14)]


def test_total_hours_counts_overlap_once() -> None:
    assert total_hours([span(6, 10), span(8, 12)]) == 6.0


def test_interval_rejects_naive_and_reversed() -> None:
    with pytest.raises(ValueError, match="naive"):
        Interval(datetime(2026, 1, 1), at(1))
    with pytest.raises(ValueError, match="ends before it starts"):
        span(10, 8)
