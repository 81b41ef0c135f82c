"""Timeline geometry: segments cut to the span, day and hour ticks, the "now" marker."""

from __future__ import annotations

from datetime import timedelta

from kooperant.intervals import Interval
from server.timeline import build_timeline
from tests.server.helpers import T0, hours


def test_segments_cut_to_span() -> None:
    span = Interval(T0, T0 + timedelta(days=2))
    free = [Interval(T0 - hours(5), T0 + hours(12)), Interval(T0 + hours(40), T0 + hours(60))]

    timeline = build_timeline(free, span, T0 + hours(24), "pl")

    assert [(segment.x, segment.width) for segment in timeline.segments] == [
        (0.0, 25.0),
        (83.333, 16.667),
    ]
    assert timeline.now_x == 50.0
    assert timeline.segments[0].title == "07.12.2026 02:00 – 07.12.2026 19:00"


def test_ticks_on_warsaw_midnight() -> None:
    span = Interval(T0, T0 + timedelta(days=2))

    english = build_timeline([], span, T0 - hours(1), "en", hour_ticks=True)

    majors = [tick for tick in english.ticks if tick.major]
    assert [tick.label for tick in majors] == ["12-08", "12-09"]
    # 2026-12-08 00:00 in Warsaw is 2026-12-07 23:00 UTC, 17 h after the span starts at 06:00.
    assert majors[0].x == round(100 * 17 / 48, 3)
    assert [tick.label for tick in english.ticks if not tick.major][:3] == ["12", "18", "06"]
    assert english.now_x is None
