"""Geometry of the availability timelines the pages draw as SVG.

Positions are percentages of the timeline's width, so a template scales the bar to any width.
Day ticks fall on midnight in Europe/Warsaw; ``hour_ticks`` adds 06:00, 12:00 and 18:00 for the
larger chart of the offer page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from kooperant.i18n import Language
from kooperant.intervals import Interval
from server.dashboard import DISPLAY_TIMEZONE, format_time

DEFAULT_HORIZON = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    width: float
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str
    major: bool


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: tuple[Segment, ...]
    ticks: tuple[Tick, ...]
    now_x: float | None
    start_label: str
    end_label: str


def build_timeline(
    intervals: Sequence[Interval],
    span: Interval,
    now: datetime,
    language: Language,
    *,
    hour_ticks: bool = False,
) -> Timeline:
    """Place ``intervals`` on a timeline over ``span``; the parts outside ``span`` are cut."""
    total = (span.end - span.start).total_seconds()

    def position(moment: datetime) -> float:
        return round(100 * (moment - span.start).total_seconds() / total, 3)

    segments = []
    for interval in intervals:
        start = max(interval.start, span.start)
        end = min(interval.end, span.end)
        if end <= start:
            continue
        title = f"{format_time(interval.start, language)} – {format_time(interval.end, language)}"
        width = round(position(end) - position(start), 3)
        segments.append(Segment(position(start), width, title))

    now_x = position(now) if span.start <= now <= span.end else None
    return Timeline(
        segments=tuple(segments),
        ticks=tuple(_ticks(span, language, hour_ticks, position)),
        now_x=now_x,
        start_label=format_time(span.start, language),
        end_label=format_time(span.end, language),
    )


def _ticks(
    span: Interval,
    language: Language,
    hour_ticks: bool,
    position: Callable[[datetime], float],
) -> list[Tick]:
    local_start = span.start.astimezone(DISPLAY_TIMEZONE)
    day = local_start.date()
    hours = (6, 12, 18) if hour_ticks else ()
    ticks = []
    while True:
        midnight = datetime.combine(day, time(0), DISPLAY_TIMEZONE)
        if midnight > span.end:
            break
        if midnight >= span.start:
            label = day.strftime("%d.%m" if language == "pl" else "%m-%d")
            ticks.append(Tick(position(midnight), label, True))
        for hour in hours:
            moment = datetime.combine(day, time(hour), DISPLAY_TIMEZONE)
            if span.start <= moment <= span.end:
                ticks.append(Tick(position(moment), f"{hour:02d}", False))
        day += timedelta(days=1)
    return ticks
