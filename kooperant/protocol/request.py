"""The request message, schema ``kooperant.request/1.0``.

A member requests, through the aggregator, free capacity of another member's offer: a time slot
of a machine, or an amount of storage, IT capacity, IT team time or supplies. The aggregator
publishes the request, retained, on the request topic of the offer's owner (``member``), and
clears that topic once the request is final. The owner's agent reads it with ``parse_request``
and answers with the message of ``kooperant.protocol.answer``.

``parse_request`` checks the payload against ``request.schema.json`` and then what a schema
cannot express: real dates, ``slot`` ending after it starts, ``expires_at`` after ``created_at``,
a requester other than the owner, and no control or format characters in the contact and
message (``request_text_problem``). This module also contains the validation steps that the
answer message shares.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import ValidationError

from kooperant.intervals import Interval
from kooperant.protocol.envelope import Envelope
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.offer import (
    check_payload_size,
    dump_standard_json,
    envelope_of,
    format_time,
    load_standard_json,
    parse_time,
    pattern_reason,
)
from kooperant.protocol.schema_check import SchemaCheck
from kooperant.protocol.text import MULTI_LINE_ALLOWED, control_character_problem
from kooperant.protocol.topics import REQUEST_ID_PATTERN, check_request_id
from kooperant.protocol.versions import SchemaVersion, accept_schema_version

REQUEST_SCHEMA_ID = "kooperant.request/1.0"
_REQUEST_VERSION = SchemaVersion("kooperant.request", 1, 0)
MAX_REQUEST_MESSAGE_CHARACTERS = 2000
_SHOWN_CHARACTERS = 100


@dataclass(frozen=True, slots=True)
class Contact:
    """The requesting person, whom the owner may call or write to. Email, phone or both are set."""

    name: str
    email: str | None = None
    phone: str | None = None

    def __post_init__(self) -> None:
        if self.email is None and self.phone is None:
            raise ValueError(f"contact {self.name!r} needs an email, a phone number or both")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.email is not None:
            data["email"] = self.email
        if self.phone is not None:
            data["phone"] = self.phone
        return data


@dataclass(frozen=True, slots=True)
class RequestedAmount:
    """An amount asked for, named like an ``Amount`` of the offer, e.g. 3 ``person_days``.

    ``quantity``, ``unit`` and ``label`` match the offer's amount that the request refers to, so
    ``label`` distinguishes the amounts of one quantity, such as the skills of an IT team.
    """

    quantity: str
    value: float
    unit: str
    label: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value > 0):
            raise ValueError(
                f"requested amount {self.quantity!r} is {self.value}: it must be above 0"
            )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"quantity": self.quantity, "value": self.value, "unit": self.unit}
        if self.label is not None:
            data["label"] = self.label
        return data


@dataclass(frozen=True, slots=True)
class CapacityRequest:
    """One member's request for capacity of another member's offer.

    Exactly one of ``slot`` (a machine) and ``amount`` (any other kind of resource) is set.
    The constructor raises ``ValueError`` for a request that breaks a rule which
    ``parse_request`` checks after the schema, such as ``expires_at`` after ``created_at``.
    """

    request_id: str
    """A UUID 4 in its canonical lowercase form, also the last level of the request topic."""
    cluster: str
    member: str
    """The owner of the offer, to whom the request goes."""
    resource: str
    requester: str
    """The requesting member, in the same cluster."""
    created_at: datetime
    expires_at: datetime
    """When the aggregator marks the request expired unless the owner decided before."""
    contact: Contact
    message: str = ""
    """Free text from the requester to the owner, at most 2000 characters."""
    slot: Interval | None = None
    amount: RequestedAmount | None = None
    envelope: Envelope | None = None
    """Message id and sequence number, if the sender stamps them."""

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        problem = _request_problem(
            member=self.member,
            requester=self.requester,
            created_at=self.created_at,
            expires_at=self.expires_at,
            message=self.message,
            slot=self.slot,
            has_amount=self.amount is not None,
        )
        if problem is not None:
            raise ValueError(problem)

    def to_json(self) -> dict[str, Any]:
        """Return the request as a JSON-ready dict that validates against the schema."""
        data: dict[str, Any] = {
            "schema": REQUEST_SCHEMA_ID,
            "request_id": self.request_id,
            "cluster": self.cluster,
            "member": self.member,
            "resource": self.resource,
            "requester": self.requester,
            "created_at": format_time(self.created_at, "auto"),
            "expires_at": format_time(self.expires_at, "auto"),
            "message": self.message,
            "contact": self.contact.to_json(),
        }
        if self.slot is not None:
            data["slot"] = {
                "start": format_time(self.slot.start, "auto"),
                "end": format_time(self.slot.end, "auto"),
            }
        if self.amount is not None:
            data["amount"] = self.amount.to_json()
        if self.envelope is not None:
            data["message_id"] = self.envelope.message_id
            data["seq"] = self.envelope.seq
        return data

    def with_envelope(self, envelope: Envelope | None) -> CapacityRequest:
        """Return a copy of the request carrying ``envelope``."""
        return replace(self, envelope=envelope)

    def to_payload(self) -> bytes:
        """Return the UTF-8 JSON payload published over MQTT."""
        return dump_standard_json(self.to_json(), "request")


def new_request_id() -> str:
    """Return a new random request id (a UUID 4 in its canonical lowercase form)."""
    return str(uuid.uuid4())


def _request_problem(
    *,
    member: str,
    requester: str,
    created_at: datetime,
    expires_at: datetime,
    message: str,
    slot: Interval | None,
    has_amount: bool,
) -> str | None:
    """Return why these request fields break a rule the schema cannot express, or None."""
    for where, value in (("created_at", created_at), ("expires_at", expires_at)):
        if value.tzinfo is None:
            return f"invalid request: {where} {value} has no time zone; attach one"
    if (slot is not None) == has_amount:
        return _slot_or_amount_reason(has_amount)
    if requester == member:
        return (
            f"invalid request at requester: member {requester!r} cannot request "
            "capacity of its own offer"
        )
    if expires_at <= created_at:
        return (
            f"invalid request at expires_at: {expires_at.isoformat()} is not after "
            f"created_at {created_at.isoformat()}"
        )
    if slot is not None and slot.end <= slot.start:
        return (
            f"invalid request at slot/end: {slot.end.isoformat()} is not after "
            f"slot/start {slot.start.isoformat()}"
        )
    if len(message) > MAX_REQUEST_MESSAGE_CHARACTERS:
        return (
            f"invalid request at message: {len(message)} characters, "
            f"the maximum is {MAX_REQUEST_MESSAGE_CHARACTERS}"
        )
    return None


def request_text_problem(contact: Contact, message: str) -> str | None:
    """Return why the contact or message contains a control or format character, or None.

    ``kooperant.protocol.text`` gives the rule: no character of category Cc or Cf in the
    contact, and none in the message except line feed and tab. ``parse_request`` and the
    aggregator's building of a new request check it. The constructor does not, so that requests
    stored before the rule existed can still be read.
    """
    fields = (
        ("contact/name", contact.name),
        ("contact/email", contact.email),
        ("contact/phone", contact.phone),
    )
    for where, value in fields:
        problem = None if value is None else control_character_problem(value, where, "request")
        if problem is not None:
            return problem
    return control_character_problem(message, "message", "request", MULTI_LINE_ALLOWED)


@cache
def request_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``kooperant.request/1.x`` as a dict."""
    text = files("kooperant.protocol").joinpath("request.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def request_schema_check() -> SchemaCheck:
    """Return the compiled checks of the request schema, shared by every caller."""
    return SchemaCheck(request_json_schema())


def parse_request(payload: bytes, *, check_text: bool = True) -> CapacityRequest:
    """Return the ``CapacityRequest`` in ``payload``, or raise ``OfferValidationError`` saying why.

    A request of a newer minor version loses the top-level fields this version does not know.
    ``check_text=False`` skips ``request_text_problem``, for reading back a payload that was
    stored before that rule existed, and must not be used for a payload just received.
    """
    schema = request_json_schema()
    data = decode_message(payload, _REQUEST_VERSION, schema["properties"].keys(), "request")
    envelope = envelope_of(data)
    if isinstance(data, Mapping):
        _check_slot_or_amount(data)
        _check_contact_reachable(data.get("contact"))
    check_schema(data, request_schema_check(), "request")

    slot = _slot_from_json(data["slot"]) if "slot" in data else None
    amount = None
    if "amount" in data:
        item = data["amount"]
        amount = RequestedAmount(
            item["quantity"], float(item["value"]), item["unit"], item.get("label")
        )

    contact_data = data["contact"]
    created_at = parse_time(data["created_at"], "created_at")
    expires_at = parse_time(data["expires_at"], "expires_at")
    problem = _request_problem(
        member=data["member"],
        requester=data["requester"],
        created_at=created_at,
        expires_at=expires_at,
        message=data["message"],
        slot=slot,
        has_amount=amount is not None,
    )
    contact = Contact(contact_data["name"], contact_data.get("email"), contact_data.get("phone"))
    if problem is None and check_text:
        problem = request_text_problem(contact, data["message"])
    if problem is not None:
        raise OfferValidationError(problem)

    return CapacityRequest(
        request_id=data["request_id"],
        cluster=data["cluster"],
        member=data["member"],
        resource=data["resource"],
        requester=data["requester"],
        created_at=created_at,
        expires_at=expires_at,
        contact=contact,
        message=data["message"],
        slot=slot,
        amount=amount,
        envelope=envelope,
    )


def _slot_from_json(data: Mapping[str, str]) -> Interval:
    start = parse_time(data["start"], "slot/start")
    end = parse_time(data["end"], "slot/end")
    if end <= start:
        # Checked here because Interval itself rejects only an end before the start.
        raise OfferValidationError(
            f"invalid request at slot/end: {data['end']!r} is not after "
            f"slot/start {data['start']!r}"
        )
    return Interval(start, end)


def _check_slot_or_amount(data: Mapping[str, Any]) -> None:
    """Reject a request with both or neither of slot and amount.

    The schema states the same rule with oneOf, whose error does not name the fields.
    """
    has_slot = "slot" in data
    if has_slot == ("amount" in data):
        raise OfferValidationError(_slot_or_amount_reason(has_slot))


def _slot_or_amount_reason(both: bool) -> str:
    found = "both" if both else "neither"
    return (
        "invalid request: give exactly one of slot (for a machine) and amount "
        f"(for other resources), found {found}"
    )


def _check_contact_reachable(contact: object) -> None:
    """Reject a contact with neither email nor phone.

    The schema states the same rule with anyOf, whose error does not name the fields.
    """
    if isinstance(contact, Mapping) and "email" not in contact and "phone" not in contact:
        raise OfferValidationError(
            "invalid request at contact: give email or phone, or both; found neither"
        )


def decode_message(
    payload: bytes, version: SchemaVersion, known_fields: Collection[str], message: str
) -> Any:
    """Return the decoded message in ``payload`` ready for schema validation.

    Checks the size, the UTF-8 and JSON syntax and the schema version, in that order, and raises
    ``OfferValidationError`` naming ``message`` (for example ``"answer"``) when one fails.
    """
    check_payload_size(payload)
    try:
        data = load_standard_json(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise OfferValidationError(f"{message} payload is not UTF-8: {error}") from error
    except json.JSONDecodeError as error:
        raise OfferValidationError(f"{message} payload is not JSON: {error}") from error
    article = "an" if message[0] in "aeiou" else "a"
    return accept_schema_version(data, version, known_fields, f"{article} {message}")


def check_schema(data: object, check: SchemaCheck, message: str) -> None:
    """Raise ``OfferValidationError`` naming the field of the first schema violation, if any."""
    errors = check.errors(data)
    if not errors:
        return
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "(root)"
    raise OfferValidationError(_schema_reason(first, where, message))


def _schema_reason(error: ValidationError, where: str, message: str) -> str:
    value = error.instance
    if error.validator == "pattern":
        if error.validator_value == REQUEST_ID_PATTERN:
            return (
                f"invalid {message} at {where}: request id {shorten_value(value)} is not a UUID 4 "
                "in lowercase, e.g. 3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
            )
        if where == "contact/email":
            return (
                f"invalid {message} at {where}: {shorten_value(value)} is not an email address "
                "such as name@example.com"
            )
        if where == "contact/phone":
            return (
                f"invalid {message} at {where}: {shorten_value(value)} is not a phone number; use "
                "3 to 32 digits, spaces and ( ) . / -, optionally after a leading +"
            )
        reason = pattern_reason(error, where)
        if reason is not None:
            return reason
    if error.validator == "maxLength" and isinstance(value, str):
        return (
            f"invalid {message} at {where}: {len(value)} characters, "
            f"the maximum is {error.validator_value}"
        )
    if error.validator == "minLength" and isinstance(value, str):
        return (
            f"invalid {message} at {where}: {len(value)} characters, "
            f"the minimum is {error.validator_value}"
        )
    if error.validator == "exclusiveMinimum":
        return f"invalid {message} at {where}: {value!r} must be above {error.validator_value}"
    text = error.message
    if len(text) > 2 * _SHOWN_CHARACTERS:
        text = f"{text[: 2 * _SHOWN_CHARACTERS]}... ({len(text)} characters)"
    return f"invalid {message} at {where}: {text}"


def shorten_value(value: object) -> str:
    """Return the repr of ``value``, cut to its first characters if it is a long string."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARACTERS:
        return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"
    return repr(value)
