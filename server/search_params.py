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
from server.regions import VOIVODESHIP_CODES, VOIVODESHIPS
from server.storage import SORT_KEYS, ResourceQuery

PAGE_SIZE = 25
MAX_PAGE = 10_000
MAX_TEXT_CHARS = 200
# Days the form accepts. Python's datetime overflows past 9999-12-31 and the databases reject
# times near 0001-01-01 once converted to UTC, so the range stays well inside both limits.
MIN_DAY = date(2000, 1, 1)
MAX_DAY = date(2100, 12, 31)
KINDS = tuple(str(kind) for kind in ResourceKind)
# The form's label of each text parameter, so an error names the field as the page shows it.
FIELD_LABELS = {
    "capability": "search_capability",
    "member": "col_member",
    "city": "search_city",
    "quantity": "search_quantity",
    "from": "search_from",
    "to": "search_to",
    "min_free": "search_min_free",
}
# A region may be given by its code, its Polish name or its English name, in any letter case.
REGION_CODES_BY_NAME = {
    name.casefold(): voivodeship.code
    for voivodeship in VOIVODESHIPS
    for name in (voivodeship.code, voivodeship.pl, voivodeship.en)
}
# Parameters that together are the search; ``lang`` and ``page`` are not part of it.
SEARCH_PARAMETERS = (
    "kind",
    "capability",
    "member",
    "region",
    "city",
    "from",
    "to",
    "min_free",
    "quantity",
)
# Parameters that take one value. ``kind`` and ``region`` may repeat, one value each, and
# ``capability`` takes several tags in one comma-separated value.
SINGLE_VALUE_PARAMETERS = (
    "capability",
    "member",
    "city",
    "from",
    "to",
    "min_free",
    "quantity",
    "sort",
    "page",
)


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The search as typed, to fill the form again; text fields are as received."""

    kinds: tuple[str, ...] = ()
    capability: str = ""
    member: str = ""
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
            "member": self.member,
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
    errors = _repeated_parameters(params, language)

    def text(name: str) -> str:
        # PostgreSQL text cannot hold NUL, and no id or city contains one.
        value = params.get(name, "").strip().replace("\x00", "")
        if len(value) > MAX_TEXT_CHARS:
            label = _label(name, language)
            errors.append(
                MESSAGES("search_text_too_long", language, name=label, max=MAX_TEXT_CHARS)
            )
            return value[:MAX_TEXT_CHARS]
        return value

    kinds = tuple(value for value in params.getlist("kind") if value)
    for kind in kinds:
        if kind not in KINDS:
            allowed = ", ".join(KINDS)
            errors.append(MESSAGES("search_kind_unknown", language, value=kind, allowed=allowed))
    regions = _regions(params.getlist("region"), language, errors)

    capability = text("capability")
    member = text("member")
    city = text("city")
    quantity = text("quantity")
    date_from = text("from")
    date_to = text("to")
    min_free_text = text("min_free")
    sort = params.get("sort", "member") or "member"
    if sort not in SORT_KEYS:
        allowed = ", ".join(SORT_KEYS)
        errors.append(MESSAGES("search_sort_unknown", language, value=sort, allowed=allowed))
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
        member=member,
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
        member=member or None,
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


def _repeated_parameters(params: QueryParams, language: Language) -> list[str]:
    """Return an error for each single-value parameter that the URL gives more than once.

    Taking the last value silently would search for something the user did not see in the form.
    """
    errors = []
    for name in SINGLE_VALUE_PARAMETERS:
        values = params.getlist(name)
        if len(values) > 1:
            shown = ", ".join(values)
            if len(shown) > MAX_TEXT_CHARS:
                shown = shown[:MAX_TEXT_CHARS] + "…"
            errors.append(
                MESSAGES(
                    "search_parameter_repeated",
                    language,
                    name=name,
                    count=len(values),
                    values=shown,
                )
            )
    return errors


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), DISPLAY_TIMEZONE)


def _label(name: str, language: Language) -> str:
    return MESSAGES(FIELD_LABELS[name], language)


def _regions(values: list[str], language: Language, errors: list[str]) -> tuple[str, ...]:
    """Return the voivodeship codes of ``values``, given as codes or names."""
    codes: list[str] = []
    for value in values:
        if not value.strip():
            continue
        code = REGION_CODES_BY_NAME.get(value.strip().casefold())
        if code is None:
            allowed = ", ".join(sorted(VOIVODESHIP_CODES))
            errors.append(MESSAGES("search_region_unknown", language, value=value, allowed=allowed))
        elif code not in codes:
            codes.append(code)
    return tuple(codes)


def _day(value: str, name: str, language: Language, errors: list[str]) -> date | None:
    if not value:
        return None
    label = _label(name, language)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(MESSAGES("search_date_invalid", language, name=label, value=value))
        return None
    if not MIN_DAY <= day <= MAX_DAY:
        errors.append(
            MESSAGES(
                "search_date_out_of_range",
                language,
                name=label,
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
