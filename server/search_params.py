"""The search form's query string: parsed into a ``ResourceQuery`` or into page errors.

Every state of the search page is in its URL, so a link to a result can be shared. Days are
calendar days in Europe/Warsaw: ``from`` starts at its midnight and ``to`` includes its whole
day. A bad value becomes a message naming it, shown on the page with status 400.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from kooperant.i18n import Language
from kooperant.protocol import ResourceKind
from server.dashboard import DISPLAY_TIMEZONE
from server.messages import MESSAGES
from server.regions import VOIVODESHIP_CODES
from server.storage import SORT_KEYS, ResourceQuery

PAGE_SIZE = 25
MAX_PAGE = 10_000
MAX_TEXT_CHARS = 200
# Days the form accepts. Python's datetime overflows past 9999-12-31 and the databases reject
# times near 0001-01-01 once converted to UTC, so the range stays well inside both limits.
MIN_DAY = date(2000, 1, 1)
MAX_DAY = date(2100, 12, 31)
KINDS = tuple(str(kind) for kind in ResourceKind)
# Parameters that together are the search; ``lang`` and ``page`` are not part of it.
SEARCH_PARAMETERS = ("kind", "capability", "region", "city", "from", "to", "min_free", "quantity")


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The search as typed, to fill the form again; text fields are as received."""

    kinds: tuple[str, ...] = ()
    capability: str = ""
    regions: tuple[str, ...] = ()
    city: str = ""
    date_from: str = ""
    date_to: str = ""
    min_free: str = ""
    quantity: str = ""
    sort: str = "member"
    page: int = 1

    def url(self, **changes: object) -> str:
        """Return the query string of this search with ``changes`` (e.g. ``page=2``)."""
        values: dict[str, object] = {
            "kind": list(self.kinds),
            "capability": self.capability,
            "region": list(self.regions),
            "city": self.city,
            "from": self.date_from,
            "to": self.date_to,
            "min_free": self.min_free,
            "quantity": self.quantity,
            "sort": self.sort,
            "page": self.page,
            **changes,
        }
        defaults = {("sort", "member"), ("page", "1")}
        pairs: list[tuple[str, str]] = []
        for name, value in values.items():
            items = value if isinstance(value, list) else [value]
            for item in items:
                text = "" if item is None else str(item)
                if text and (name, text) not in defaults:
                    pairs.append((name, text))
        return "?" + urlencode(pairs)


@dataclass(frozen=True, slots=True)
class ParsedSearch:
    form: SearchForm
    query: ResourceQuery | None
    """``None`` when ``errors`` is not empty."""
    errors: tuple[str, ...]


def parse_search(
    params: QueryParams, language: Language, *, limit: int = PAGE_SIZE
) -> ParsedSearch:
    """Parse the search parameters of ``params``; ``limit`` is the page size."""
    errors: list[str] = []

    def text(name: str) -> str:
        # PostgreSQL text cannot hold NUL, and no id or city contains one.
        value = params.get(name, "").strip().replace("\x00", "")
        if len(value) > MAX_TEXT_CHARS:
            errors.append(MESSAGES("search_text_too_long", language, name=name, max=MAX_TEXT_CHARS))
            return value[:MAX_TEXT_CHARS]
        return value

    kinds = tuple(value for value in params.getlist("kind") if value)
    for kind in kinds:
        if kind not in KINDS:
            errors.append(MESSAGES("search_kind_unknown", language, value=kind))
    regions = tuple(value for value in params.getlist("region") if value)
    for region in regions:
        if region not in VOIVODESHIP_CODES:
            errors.append(MESSAGES("search_region_unknown", language, value=region))

    capability = text("capability")
    city = text("city")
    quantity = text("quantity")
    date_from = text("from")
    date_to = text("to")
    min_free_text = text("min_free")
    sort = params.get("sort", "member") or "member"
    if sort not in SORT_KEYS:
        errors.append(MESSAGES("search_sort_unknown", language, value=sort))
        sort = "member"
    page = _page(params.get("page", "1"), language, errors)

    start = _day(date_from, "from", language, errors)
    end = _day(date_to, "to", language, errors)
    if start is not None and end is not None and end < start:
        errors.append(MESSAGES("search_to_before_from", language, start=date_from, end=date_to))
    min_free = _min_free(min_free_text, language, errors)

    form = SearchForm(
        kinds=kinds,
        capability=capability,
        regions=regions,
        city=city,
        date_from=date_from,
        date_to=date_to,
        min_free=min_free_text,
        quantity=quantity,
        sort=sort,
        page=page,
    )
    if errors:
        return ParsedSearch(form, None, tuple(errors))

    query = ResourceQuery(
        kinds=kinds,
        capabilities=tuple(
            sorted({item.strip() for item in capability.split(",") if item.strip()})
        ),
        regions=regions,
        city=city or None,
        window_start=_midnight(start) if start is not None else None,
        window_end=_midnight(end + timedelta(days=1)) if end is not None else None,
        min_free=min_free,
        quantity=quantity or None,
        sort=sort,
        limit=limit,
        offset=(page - 1) * limit,
    )
    return ParsedSearch(form, query, ())


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), DISPLAY_TIMEZONE)


def _day(value: str, name: str, language: Language, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(MESSAGES("search_date_invalid", language, name=name, value=value))
        return None
    if not MIN_DAY <= day <= MAX_DAY:
        errors.append(
            MESSAGES(
                "search_date_out_of_range",
                language,
                name=name,
                value=value,
                min=MIN_DAY.isoformat(),
                max=MAX_DAY.isoformat(),
            )
        )
        return None
    return day


def _min_free(value: str, language: Language, errors: list[str]) -> float | None:
    if not value:
        return None
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        errors.append(MESSAGES("search_min_free_invalid", language, value=value))
        return None
    if not math.isfinite(number) or number < 0:
        errors.append(MESSAGES("search_min_free_invalid", language, value=value))
        return None
    return number


def _page(value: str, language: Language, errors: list[str]) -> int:
    try:
        page = int(value)
    except ValueError:
        errors.append(MESSAGES("search_page_invalid", language, value=value, max=MAX_PAGE))
        return 1
    if not 1 <= page <= MAX_PAGE:
        errors.append(MESSAGES("search_page_invalid", language, value=value, max=MAX_PAGE))
        return 1
    return page
