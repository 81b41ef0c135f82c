"""The HTML dashboard and its sign-in form, in Polish or English.

Times are shown in Europe/Warsaw, the time zone of the clusters kooperant serves. Polish pages use
``dd.mm.yyyy HH:MM`` and a decimal comma; English pages use ``yyyy-mm-dd HH:MM`` and a point.
A band the owner shows instead of a number reads ``20–40 h``, or ``≥ 80 h`` when it is open.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, Template, select_autoescape

from kooperant.i18n import DEFAULT_LANGUAGE, LANGUAGES, Language
from kooperant.protocol import Band
from server.messages import MESSAGES
from server.storage import MemberRecord, ResourceRecord, Viewer

DISPLAY_TIMEZONE = ZoneInfo("Europe/Warsaw")
# Quantities and units the host adapter reports, which have translated names in MESSAGES.
# Quantities and units with a ``quantity_*`` or ``unit_*`` message: those the bundled adapters
# send, plus ``sheets`` and ``pcs``. Pages show any other quantity or unit as the agent sent it.
KNOWN_QUANTITIES = frozenset(
    {
        "cpu_free",
        "memory_free",
        "disk_free",
        "pallet_places",
        "floor_area",
        "person_days",
        "stock",
        "surplus",
        "incoming",
        "expected_stock",
        "sheets",
    }
)
KNOWN_UNITS = frozenset({"cores", "pallets", "m2", "days", "pcs"})


@dataclass(frozen=True, slots=True)
class _Row:
    resource: str
    name: str | None
    kind: str
    state: str
    free: str
    next_free: str
    updated: str


@dataclass(frozen=True, slots=True)
class _MemberSection:
    heading: str
    status: str
    """The CSS class of the connection badge: "online", "offline" or "unknown"."""
    status_label: str
    status_since: str
    last_seen: str
    rows: tuple[_Row, ...]


def choose_language(lang_parameter: str | None, accept_language: str | None) -> Language:
    """Return the page language: ``?lang=`` first, then ``Accept-Language``, else Polish."""
    for candidate in (lang_parameter, *_accepted_languages(accept_language)):
        if candidate is None:
            continue
        code = candidate.strip().lower()[:2]
        for language in LANGUAGES:
            if code == language:
                return language
    return DEFAULT_LANGUAGE


def _accepted_languages(header: str | None) -> list[str]:
    """Return the languages of an ``Accept-Language`` header, highest quality first."""
    if not header:
        return []
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted) if tag]


def format_time(value: datetime | None, language: Language) -> str:
    """Return ``value`` in Europe/Warsaw in the page language's format, or a dash."""
    if value is None:
        return MESSAGES("none", language)
    local = value.astimezone(DISPLAY_TIMEZONE)
    return local.strftime("%d.%m.%Y %H:%M" if language == "pl" else "%Y-%m-%d %H:%M")


def format_hours(value: float | None, language: Language) -> str:
    """Return hours as ``162,0 h`` (decimal comma in Polish), or a dash."""
    if value is None:
        return MESSAGES("none", language)
    return f"{format_number(value, language)} h"


def format_band(band: Band, language: Language) -> str:
    """Return a band as ``20–40`` or, open-ended, ``≥ 80``; whole edges have no decimals."""
    low = _format_edge(band.min, language)
    if band.max is None:
        return MESSAGES("band_open", language, min=low)
    return MESSAGES("band_closed", language, min=low, max=_format_edge(band.max, language))


def _format_edge(value: float, language: Language) -> str:
    return str(int(value)) if float(value).is_integer() else format_number(value, language)


def format_amounts(amounts: Sequence[Mapping[str, Any]], language: Language) -> str:
    """Return measured amounts as ``memory 10.3 GiB · disk / 52.1 GiB``, or a dash.

    A banded amount reads ``pallet_places 100–200 pallets``.
    """
    if not amounts:
        return MESSAGES("none", language)
    parts = []
    for amount in amounts:
        quantity = str(amount["quantity"])
        name = (
            MESSAGES(f"quantity_{quantity}", language) if quantity in KNOWN_QUANTITIES else quantity
        )
        if amount.get("label"):
            name = f"{name} {amount['label']}"
        unit = str(amount["unit"])
        if unit in KNOWN_UNITS:
            unit = MESSAGES(f"unit_{unit}", language)
        if amount.get("band") is not None:
            band = amount["band"]
            maximum = band["max"]
            amount_text = format_band(
                Band(float(band["min"]), float(maximum) if maximum is not None else None),
                language,
            )
        else:
            amount_text = format_number(float(amount["value"]), language)
        parts.append(f"{name} {amount_text} {unit}")
    return " · ".join(parts)


def format_number(value: float, language: Language) -> str:
    """Return ``value`` with a decimal comma in Polish and never in exponent notation.

    One decimal is kept when it shows the value exactly to the second decimal (``2,0``),
    otherwise two (``0,75``, ``0,04``); smaller fractions are rounded away.
    """
    text = f"{value:.1f}"
    if round(value, 2) != round(value, 1):
        text = f"{value:.2f}"
    return text.replace(".", ",") if language == "pl" else text


def render_dashboard(
    resources: Sequence[ResourceRecord],
    members: Sequence[MemberRecord],
    *,
    lang_parameter: str | None,
    accept_language: str | None,
    now: datetime | None = None,
    signed_in: Viewer | None = None,
) -> str:
    """Return the dashboard HTML for ``resources`` grouped by member.

    ``signed_in`` is the member whose token the browser sent, shown with a sign-out button.
    """
    language = choose_language(lang_parameter, accept_language)
    moment = now or datetime.now(UTC)
    sections = _member_sections(resources, members, language, moment)
    html: str = _template("dashboard.html").render(
        **_page_context(language),
        sections=sections,
        signed_in=signed_in if signed_in is not None and not signed_in.anonymous else None,
    )
    return html


def render_sign_in(language: Language, *, lang_parameter: str | None, rejected: bool) -> str:
    """Return the token sign-in form; ``rejected`` adds the message that a token was unknown."""
    html: str = _template("sign_in.html").render(
        **_page_context(language),
        lang_parameter=lang_parameter if lang_parameter in LANGUAGES else None,
        rejected=rejected,
    )
    return html


def _page_context(language: Language) -> dict[str, Any]:
    def text(message_id: str, **fields: object) -> str:
        return MESSAGES(message_id, language, **fields)

    return {
        "language": language,
        "other_language": "en" if language == "pl" else "pl",
        "t": text,
    }


def _member_sections(
    resources: Sequence[ResourceRecord],
    members: Sequence[MemberRecord],
    language: Language,
    now: datetime,
) -> list[_MemberSection]:
    by_member: dict[tuple[str, str], list[ResourceRecord]] = defaultdict(list)
    for record in resources:
        by_member[(record.cluster, record.member)].append(record)

    sections = []
    for member in members:
        records = by_member.get((member.cluster, member.member), [])
        # A member with a status is shown without offers too, so an offline agent is noticed.
        if not records and member.status is None:
            continue
        sections.append(_member_section(member, records, language, now))
    return sections


def _member_section(
    member: MemberRecord, records: Sequence[ResourceRecord], language: Language, now: datetime
) -> _MemberSection:
    status = member.status if member.status in ("online", "offline") else "unknown"
    since = ""
    if status != "unknown" and member.status_since is not None:
        since = MESSAGES("status_since", language, time=format_time(member.status_since, language))

    return _MemberSection(
        heading=MESSAGES("member_heading", language, member=member.member, cluster=member.cluster),
        status=status,
        status_label=MESSAGES(f"status_{status}", language),
        status_since=since,
        last_seen=MESSAGES("last_seen", language, time=format_time(member.last_seen, language)),
        rows=tuple(_row(record, language, now) for record in records),
    )


def _row(record: ResourceRecord, language: Language, now: datetime) -> _Row:
    state = MESSAGES("none", language)
    if record.state is not None:
        state = MESSAGES(f"state_{record.state}", language)
    kind = MESSAGES(f"kind_{record.kind}", language)

    next_free = MESSAGES("none", language)
    upcoming = [interval for interval in record.free_intervals if interval.end > now]
    if upcoming:
        first = upcoming[0]
        next_free = (
            f"{format_time(max(first.start, now), language)} – {format_time(first.end, language)}"
        )

    return _Row(
        resource=record.resource,
        name=record.name,
        kind=kind,
        state=state,
        free=_free(record, language),
        next_free=next_free,
        updated=format_time(record.received_at, language),
    )


def _free(record: ResourceRecord, language: Language) -> str:
    if record.free_hours_band is not None:
        return f"{format_band(record.free_hours_band, language)} h"
    if record.free_hours is None and record.amounts:
        return format_amounts(record.amounts, language)
    return format_hours(record.free_hours, language)


@cache
def _template_environment() -> Environment:
    return Environment(
        loader=PackageLoader("server", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _template(name: str) -> Template:
    return _template_environment().get_template(name)
