"""The request form of the offer page: who gets it, its choices and its prefilled values.

A machine offer is requested by a slot whose start and end are a date and a time each. They are
read in Europe/Warsaw like every time the dashboard shows, and the offer's free intervals are
listed as links that fill them in. Any other offer is requested by one of its amounts with something
free, chosen from a select, and a value. An offer with no such amount gets a note in place of
the form. ``server.request_form_checks`` checks a posted form, and the form is shown
again with every value as the user typed it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request

from kooperant.i18n import Language
from kooperant.protocol.request import MAX_REQUEST_MESSAGE_CHARACTERS
from server.api_errors import read
from server.auth import Authenticator, viewer_of_user
from server.dashboard import DISPLAY_TIMEZONE, format_amounts, format_time
from server.messages import MESSAGES
from server.request_api import DEFAULT_EXPIRY_HOURS
from server.request_form_checks import EXPIRY_CHOICES, amount_key
from server.storage import ProfileRecord, ResourceRecord, Storage

# Free intervals listed above the slot fields, at most. A machine's horizon rarely has more.
MAX_LISTED_INTERVALS = 30
# The message alone may take 2000 characters of 3 UTF-8 bytes, each byte written as %XX: 18 KB.
REQUEST_FORM_MAX_BYTES = 32 * 1024
SLOT_FIELDS = ("start_date", "start_time", "end_date", "end_time")


@dataclass(frozen=True, slots=True)
class IntervalChoice:
    """A free interval of the offer and the link that fills the slot fields with it."""

    text: str
    href: str


@dataclass(frozen=True, slots=True)
class AmountChoice:
    key: str
    """The option's value: the JSON list of quantity, unit and label."""
    text: str


@dataclass(frozen=True, slots=True)
class RequestForm:
    """The choices, typed values and errors that ``templates/request_form.html`` shows."""

    action: str
    offer_href: str
    machine: bool
    values: Mapping[str, str]
    errors: Mapping[str, str]
    intervals: tuple[IntervalChoice, ...]
    amounts: tuple[AmountChoice, ...]
    expiry_choices: tuple[int, ...]
    message_max: int
    nothing_free: bool = False
    """True for an offer other than a machine whose amounts have nothing free."""


async def offer_request_context(
    request: Request,
    storage: Storage,
    authenticator: Authenticator,
    record: ResourceRecord,
    now: datetime,
    language: Language,
) -> dict[str, Any]:
    """Return the offer page's variables of the request form.

    ``request_form`` is set for a signed-in account of a member other than the offer's owner.
    ``request_sign_in_href`` is set for a caller without a session (anonymous, or a browser
    sending an API token), because the form needs the session's CSRF token. For an offer whose
    owner takes no requests, both stay ``None`` and ``requests_closed`` is true.
    """
    context: dict[str, Any] = {
        "request_form": None,
        "request_sign_in_href": None,
        "requests_closed": not record.accepts_requests,
    }
    if not record.accepts_requests:
        return context
    session = await asyncio.to_thread(authenticator.session, request)
    if session is None:
        target = f"{offer_path(record)}?lang={language}#request-form"
        context["request_sign_in_href"] = f"/login?next={quote(target, safe='')}"
        return context
    user = session.user
    if user.member is None or (user.cluster, user.member) == (record.cluster, record.member):
        return context

    profile = await read(
        storage.get_profile, user.cluster, user.member, viewer=viewer_of_user(user)
    )
    values = initial_values(profile, request.query_params)
    context["request_form"] = request_form(record, values, {}, now, language)
    return context


def offer_path(record: ResourceRecord) -> str:
    return f"/offers/{record.cluster}/{record.member}/{record.resource}"


def initial_values(profile: ProfileRecord | None, query: Mapping[str, str]) -> dict[str, str]:
    """Return the values of an empty form: the member's contact and a slot from the query.

    The links of the free intervals pass the slot as the query parameters ``SLOT_FIELDS``.
    """
    values = {name: query.get(name, "")[:32] for name in SLOT_FIELDS}
    values["expires_in_hours"] = str(DEFAULT_EXPIRY_HOURS)
    if profile is not None:
        values["contact_name"] = profile.name
        values["contact_email"] = profile.contact_email or ""
        values["contact_phone"] = profile.contact_phone or ""
    return values


def request_form(
    record: ResourceRecord,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    now: datetime,
    language: Language,
) -> RequestForm:
    """Return the form for ``record`` with ``values`` typed and ``errors`` by field."""
    path = offer_path(record)
    machine = record.kind == "machine"
    amounts = tuple(
        _amount_choice(amount, language) for amount in record.amounts if _has_free(amount)
    )
    return RequestForm(
        action=f"{path}/request?lang={language}",
        offer_href=f"{path}?lang={language}",
        machine=machine,
        values=values,
        errors=errors,
        intervals=_interval_choices(record, path, now, language),
        amounts=amounts,
        expiry_choices=EXPIRY_CHOICES,
        message_max=MAX_REQUEST_MESSAGE_CHARACTERS,
        nothing_free=not machine and not amounts,
    )


def _interval_choices(
    record: ResourceRecord, path: str, now: datetime, language: Language
) -> tuple[IntervalChoice, ...]:
    """Return the offer's free intervals from now on, cut to whole minutes inside each."""
    choices = []
    for interval in record.free_intervals:
        start = _ceil_minute(max(interval.start, now)).astimezone(DISPLAY_TIMEZONE)
        end = interval.end.replace(second=0, microsecond=0).astimezone(DISPLAY_TIMEZONE)
        if end <= start:
            continue
        fields = {
            "lang": language,
            "start_date": start.date().isoformat(),
            "start_time": start.strftime("%H:%M"),
            "end_date": end.date().isoformat(),
            "end_time": end.strftime("%H:%M"),
        }
        shown = MESSAGES(
            "request_form_interval",
            language,
            start=format_time(start, language),
            end=format_time(end, language),
        )
        choices.append(IntervalChoice(shown, f"{path}?{urlencode(fields)}#request-form"))
        if len(choices) == MAX_LISTED_INTERVALS:
            break
    return tuple(choices)


def _ceil_minute(value: datetime) -> datetime:
    whole = value.replace(second=0, microsecond=0)
    return whole if whole == value else whole + timedelta(minutes=1)


def _has_free(amount: Mapping[str, Any]) -> bool:
    """Return whether an amount has something free: its value, or its band minimum, above 0.

    ``Storage.create_request`` accepts a request up to the same free value.
    """
    value = amount.get("value")
    if value is not None:
        return float(value) > 0
    band = amount.get("band")
    return band is not None and float(band["min"]) > 0


def _amount_choice(amount: Mapping[str, Any], language: Language) -> AmountChoice:
    key = json.dumps([amount["quantity"], amount["unit"], amount.get("label")])
    return AmountChoice(key, format_amounts([amount], language))


def form_of_hidden_offer(
    cluster: str,
    member: str,
    resource: str,
    values: Mapping[str, str],
    error: str,
    language: Language,
) -> RequestForm:
    """Return the posted form for an offer the caller may no longer see, with ``error`` on top.

    The offer's intervals and amounts are not shown, so the form keeps only what was typed.
    """
    path = f"/offers/{cluster}/{member}/{resource}"
    amount = amount_key(values.get("amount", ""))
    amounts: tuple[AmountChoice, ...] = ()
    if amount is not None:
        shown = " ".join(part for part in amount if part)
        amounts = (AmountChoice(values["amount"], shown),)
    return RequestForm(
        action=f"{path}/request?lang={language}",
        offer_href=f"{path}?lang={language}",
        machine="start_date" in values,
        values=values,
        errors={"form": error},
        intervals=(),
        amounts=amounts,
        expiry_choices=EXPIRY_CHOICES,
        message_max=MAX_REQUEST_MESSAGE_CHARACTERS,
    )
