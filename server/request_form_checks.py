"""The checks of a posted request form, in the page's language, and the request they build.

Each invalid field gets its own message. The slot's dates and times are read in Europe/Warsaw,
like every time the dashboard shows. The contact is checked with the patterns and lengths of the
request schema, so its errors can be shown in the page's language.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta

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
from kooperant.protocol.text import MULTI_LINE_ALLOWED, find_control_character
from server.dashboard import DISPLAY_TIMEZONE
from server.errors import RequestError
from server.messages import MESSAGES
from server.request_api import DEFAULT_EXPIRY_HOURS
from server.request_build import build_request
from server.storage import ResourceRecord

# Hours a requester may choose until the request expires. The API accepts any from 1 to 720.
EXPIRY_CHOICES = (24, DEFAULT_EXPIRY_HOURS, 72, 168, 336, 720)
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
    # Browsers send the line ends of a textarea as CR LF, and the request keeps line feeds only.
    message = form.get("message", "").replace("\r\n", "\n")
    found = find_control_character(message, MULTI_LINE_ALLOWED)
    if len(message) > MAX_REQUEST_MESSAGE_CHARACTERS:
        errors["message"] = text(
            "request_form_message_too_long", length=len(message), max=MAX_REQUEST_MESSAGE_CHARACTERS
        )
    elif found is not None:
        errors["message"] = text(
            "request_form_message_control_character",
            code=found.code_point,
            position=found.position,
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

    A slot that is not free gets its own message pointing to the free intervals listed above
    the form, without guessing why the slot is not free.
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
    key = amount_key(form.get("amount", ""))
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


def amount_key(text: str) -> tuple[str, str, str | None] | None:
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
    # A control character is the more precise reason, so it replaces a pattern's error.
    contact_fields = {"contact_name": name, "contact_email": email, "contact_phone": phone}
    for field, value in contact_fields.items():
        found = None if value is None else find_control_character(value)
        if found is not None:
            errors[field] = text(
                "request_form_control_character", code=found.code_point, position=found.position
            )
    if set(errors) & {"contact_name", "contact_email", "contact_phone"}:
        return None
    return Contact(name, email, phone)
