"""The request form of the offer page: its choices, prefilled values and the checks of a post.

A machine offer is requested by a slot whose start and end are a date and a time each, read in
Europe/Warsaw like every time the dashboard shows. Any other offer is requested by one of its
amounts, chosen from a select, and a value. Each invalid field gets its own message in the page's
language, and the form is shown again with every value as the user typed it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request

from kooperant.i18n import Language
from kooperant.intervals import Interval
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.request import (
    MAX_REQUEST_MESSAGE_CHARACTERS,
    CapacityRequest,
    Contact,
    RequestedAmount,
    request_json_schema,
)
from server.api_errors import read
from server.auth import Authenticator, viewer_of_user
from server.dashboard import DISPLAY_TIMEZONE, format_amounts, format_time
from server.errors import RequestError
from server.messages import MESSAGES
from server.request_api import DEFAULT_EXPIRY_HOURS
from server.request_build import build_request
from server.storage import ProfileRecord, ResourceRecord, Storage

# Hours a requester may choose until the request expires. The API accepts any from 1 to 720.
EXPIRY_CHOICES = (24, DEFAULT_EXPIRY_HOURS, 72, 168, 336, 720)
# Free intervals listed above the slot fields, at most. A machine's horizon rarely has more.
MAX_LISTED_INTERVALS = 30
# The message alone may take 2000 characters of 3 UTF-8 bytes, each byte written as %XX: 18 KB.
REQUEST_FORM_MAX_BYTES = 32 * 1024
SLOT_FIELDS = ("start_date", "start_time", "end_date", "end_time")
_CONTACT_SCHEMA = request_json_schema()["properties"]["contact"]["properties"]
MAX_CONTACT_NAME = int(_CONTACT_SCHEMA["name"]["maxLength"])
MAX_EMAIL = int(_CONTACT_SCHEMA["email"]["maxLength"])
_EMAIL_PATTERN = re.compile(_CONTACT_SCHEMA["email"]["pattern"])
_PHONE_PATTERN = re.compile(_CONTACT_SCHEMA["phone"]["pattern"])
# Fields that show a storage error, by message id prefix. Any other error is shown above the form.
_FIELD_OF_ERROR_PREFIX = (
    ("request_slot_", "slot"),
    ("request_amount_above_free", "amount_value"),
    ("request_amount_", "amount"),
)
_Text = Callable[..., str]


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
    sending an API token), because the form needs the session's CSRF token.
    """
    session = await asyncio.to_thread(authenticator.session, request)
    context: dict[str, Any] = {"request_form": None, "request_sign_in_href": None}
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
    return RequestForm(
        action=f"{path}/request?lang={language}",
        offer_href=f"{path}?lang={language}",
        machine=record.kind == "machine",
        values=values,
        errors=errors,
        intervals=_interval_choices(record, path, now, language),
        amounts=tuple(_amount_choice(amount, language) for amount in record.amounts),
        expiry_choices=EXPIRY_CHOICES,
        message_max=MAX_REQUEST_MESSAGE_CHARACTERS,
    )


def parse_request_form(
    form: Mapping[str, str],
    record: ResourceRecord,
    requester: str,
    now: datetime,
    language: Language,
) -> CapacityRequest | dict[str, str]:
    """Return the request the posted ``form`` describes, or the error message of each field."""
    errors: dict[str, str] = {}

    def text(message_id: str, **fields: object) -> str:
        return MESSAGES(message_id, language, **fields)

    slot = None
    amount = None
    if record.kind == "machine":
        slot = _parse_slot(form, errors, text)
    else:
        amount = _parse_amount(form, errors, text)
    message = form.get("message", "")
    if len(message) > MAX_REQUEST_MESSAGE_CHARACTERS:
        errors["message"] = text(
            "request_form_message_too_long", length=len(message), max=MAX_REQUEST_MESSAGE_CHARACTERS
        )
    contact = _parse_contact(form, errors, text)
    expiry = form.get("expires_in_hours", "")
    if expiry not in {str(hours) for hours in EXPIRY_CHOICES}:
        errors["expires_in_hours"] = text("request_form_expiry_invalid", value=expiry[:32])
    if errors or contact is None:
        return errors

    try:
        return build_request(
            cluster=record.cluster,
            member=record.member,
            resource=record.resource,
            requester=requester,
            now=now,
            expires_in=timedelta(hours=int(expiry)),
            contact=contact,
            message=message,
            slot=slot,
            amount=amount,
        )
    except (ValueError, OfferValidationError) as error:
        # NOTE: the checks above mirror the contact, message and slot rules of the request
        # schema. A rule added to the schema later reaches the user as this English reason.
        return {"form": text("request_form_invalid", reason=str(error))}


def storage_error_field(error: RequestError, language: Language) -> tuple[str, str]:
    """Return the form field a refusal of ``Storage.create_request`` belongs to, and its text.

    A slot that is not free gets a message saying it may just have been taken, because the
    form lists the free intervals of the moment the page was loaded.
    """
    if error.message_id == "request_slot_not_free":
        return "slot", MESSAGES("request_form_slot_taken", language)
    for prefix, field in _FIELD_OF_ERROR_PREFIX:
        if error.message_id.startswith(prefix):
            return field, error.localized(language)
    return "form", error.localized(language)


def _parse_slot(form: Mapping[str, str], errors: dict[str, str], text: _Text) -> Interval | None:
    start = _local_time(form.get("start_date", ""), form.get("start_time", ""))
    end = _local_time(form.get("end_date", ""), form.get("end_time", ""))
    for field, value in (("slot_start", start), ("slot_end", end)):
        if value is None:
            side = field.removeprefix("slot_")
            typed = f"{form.get(f'{side}_date', '')} {form.get(f'{side}_time', '')}".strip()
            errors[field] = text("request_form_time_invalid", value=typed[:64] or "—")
    if start is None or end is None:
        return None
    if end <= start:
        errors["slot_end"] = text(
            "request_form_end_before_start",
            start=f"{form['start_date']} {form['start_time']}",
            end=f"{form['end_date']} {form['end_time']}",
        )
        return None
    return Interval(start, end)


def _local_time(day_text: str, time_text: str) -> datetime | None:
    """Return the Europe/Warsaw date and time of the inputs in UTC, or ``None`` if invalid."""
    try:
        day = date.fromisoformat(day_text.strip())
        clock_time = time.fromisoformat(time_text.strip())
        if clock_time.tzinfo is not None:
            return None
        # NOTE: a time in the hour skipped when clocks go forward is read with the offset
        # before the change (zoneinfo's fold=0), so 02:30 on that day means 03:30.
        return datetime.combine(day, clock_time, tzinfo=DISPLAY_TIMEZONE).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _parse_amount(
    form: Mapping[str, str], errors: dict[str, str], text: _Text
) -> RequestedAmount | None:
    key = _amount_key(form.get("amount", ""))
    if key is None:
        errors["amount"] = text("request_form_amount_missing")
    value_text = form.get("amount_value", "").strip()
    try:
        value = float(value_text.replace(",", "."))
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        errors["amount_value"] = text("request_form_value_invalid", value=value_text[:32] or "—")
        return None
    if key is None:
        return None
    quantity, unit, label = key
    return RequestedAmount(quantity, value, unit, label)


def _amount_key(text: str) -> tuple[str, str, str | None] | None:
    """Return the quantity, unit and label of an amount option's value, or ``None``."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(parsed, list) and len(parsed) == 3):
        return None
    quantity, unit, label = parsed
    if not (isinstance(quantity, str) and isinstance(unit, str)):
        return None
    if label is not None and not isinstance(label, str):
        return None
    return quantity, unit, label


def _parse_contact(form: Mapping[str, str], errors: dict[str, str], text: _Text) -> Contact | None:
    name = form.get("contact_name", "").strip()
    email = form.get("contact_email", "").strip() or None
    phone = form.get("contact_phone", "").strip() or None
    if not name:
        errors["contact_name"] = text("request_form_name_missing")
    elif len(name) > MAX_CONTACT_NAME:
        errors["contact_name"] = text(
            "request_form_name_too_long", length=len(name), max=MAX_CONTACT_NAME
        )
    if email is not None and (len(email) > MAX_EMAIL or not _EMAIL_PATTERN.match(email)):
        errors["contact_email"] = text("request_form_email_invalid", value=email[:64])
    if phone is not None and not _PHONE_PATTERN.match(phone):
        errors["contact_phone"] = text("request_form_phone_invalid", value=phone[:64])
    if email is None and phone is None:
        errors["contact_email"] = text("request_form_contact_missing")
    if set(errors) & {"contact_name", "contact_email", "contact_phone"}:
        return None
    return Contact(name, email, phone)


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
    amount = _amount_key(values.get("amount", ""))
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
