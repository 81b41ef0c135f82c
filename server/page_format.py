"""Values of the search, offer, member and coordinator pages formatted for one language.

Builds on ``server.dashboard``'s time and number helpers: ``dd.mm.yyyy`` and a decimal comma in
Polish, ``yyyy-mm-dd`` and a point in English, times in Europe/Warsaw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from kooperant.i18n import Language
from kooperant.protocol import Price
from server.dashboard import (
    DISPLAY_TIMEZONE,
    format_amounts,
    format_band,
    format_hours,
    format_number,
    format_time,
)
from server.messages import MESSAGES
from server.storage import HistoryRecord, MemberRecord, ResourceRecord


@dataclass(frozen=True, slots=True)
class StatusBadge:
    css_class: str
    """"online", "offline" or "unknown", as the layout's ``.badge`` classes."""
    label: str
    detail: str


def format_date(value: date | datetime, language: Language) -> str:
    """Return a day as ``05.12.2026`` in Polish or ``2026-12-05`` in English."""
    if isinstance(value, datetime):
        value = value.astimezone(DISPLAY_TIMEZONE).date()
    return value.strftime("%d.%m.%Y" if language == "pl" else "%Y-%m-%d")


def free_text(record: ResourceRecord | HistoryRecord, language: Language) -> str:
    """Return what is free: hours, a band of hours, or the amounts."""
    if record.free_hours_band is not None:
        return f"{format_band(record.free_hours_band, language)} h"
    if record.free_hours is None and record.amounts:
        return format_amounts(record.amounts, language)
    return format_hours(record.free_hours, language)


def price_text(price: Price | None, language: Language) -> str:
    """Return a unit price as ``42,5 PLN za sheet``, or a dash when the offer has none."""
    if price is None:
        return MESSAGES("none", language)
    value = format_number(price.value, language)
    return MESSAGES(
        "price_per_unit", language, value=value, currency=price.currency, unit=price.unit
    )


def next_free_text(record: ResourceRecord, now: datetime, language: Language) -> str:
    """Return the next free interval from ``now`` on, or a dash."""
    upcoming = [interval for interval in record.free_intervals if interval.end > now]
    if not upcoming:
        return MESSAGES("none", language)
    first = upcoming[0]
    return f"{format_time(max(first.start, now), language)} – {format_time(first.end, language)}"


def state_text(state: str | None, language: Language) -> str:
    if state is None:
        return MESSAGES("none", language)
    return MESSAGES(f"state_{state}", language)


def status_badge(member: MemberRecord | None, language: Language) -> StatusBadge:
    """Return the connection badge of ``member`` with its last update."""
    status = "unknown"
    if member is not None and member.status in ("online", "offline"):
        status = member.status
    last_seen = member.last_seen if member is not None else None
    detail = MESSAGES("last_seen", language, time=format_time(last_seen, language))
    if status != "unknown" and member is not None and member.status_since is not None:
        since = MESSAGES("status_since", language, time=format_time(member.status_since, language))
        detail = f"{since} · {detail}"
    return StatusBadge(status, MESSAGES(f"status_{status}", language), detail)
