"""The offer message, schema ``kooperant.offer/1.2``.

The agent builds an ``Offer`` and serialises it with ``Offer.to_payload``. The aggregator turns
received bytes back into an ``Offer`` with ``parse_offer``, which checks them against the JSON
Schema in ``offer.schema.json`` and then checks what a schema cannot express (real dates, interval
order). Version 1.1 added the envelope (``message_id`` and ``seq``), which 1.0 offers lack.
Version 1.2 added ``accepts_requests``. An offer without it, such as every 1.0 and 1.1 offer,
does not take capacity requests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any, NoReturn

from jsonschema import ValidationError

from kooperant.intervals import Interval
from kooperant.protocol.envelope import Envelope, parse_envelope
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.schema_check import SchemaCheck
from kooperant.protocol.versions import SchemaVersion, accept_schema_version

OFFER_SCHEMA_ID = "kooperant.offer/1.2"
_OFFER_VERSION = SchemaVersion("kooperant.offer", 1, 2)
MAX_PAYLOAD_BYTES = 1_000_000
# Top-level fields added after 1.0, with the minor version that added them. The envelope of 1.1
# is not listed because readers accepted it in 1.0 offers before this check existed.
_ADDED_IN_MINOR = {"accepts_requests": 2}


class ResourceKind(StrEnum):
    MACHINE = "machine"
    STORAGE = "storage"
    IT_CAPACITY = "it_capacity"
    IT_TEAM = "it_team"
    SUPPLIES = "supplies"


class MachineState(StrEnum):
    """States of the OPC 40001 ``MachineryItemState`` state machine, plus ``Unknown``."""

    NOT_AVAILABLE = "NotAvailable"
    OUT_OF_SERVICE = "OutOfService"
    NOT_EXECUTING = "NotExecuting"
    EXECUTING = "Executing"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class Band:
    """A range shown instead of an exact number: ``min`` inclusive, ``max`` exclusive or open."""

    min: float
    max: float | None = None

    def __post_init__(self) -> None:
        if self.max is not None and self.max <= self.min:
            raise ValueError(f"band maximum {self.max} must be above its minimum {self.min}")

    def to_json(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}


@dataclass(frozen=True, slots=True)
class Amount:
    """A measured quantity, for example 120.5 GiB of free disk on ``/``.

    Exactly one of ``value`` and ``band`` is set: the owner's policy may replace the value with a
    band such as 100–200 pallet places.
    """

    quantity: str
    value: float | None
    unit: str
    label: str | None = None
    band: Band | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.band is None):
            raise ValueError(f"amount {self.quantity!r} needs exactly one of value and band")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"quantity": self.quantity}
        if self.value is not None:
            data["value"] = self.value
        if self.band is not None:
            data["band"] = self.band.to_json()
        data["unit"] = self.unit
        if self.label is not None:
            data["label"] = self.label
        return data


@dataclass(frozen=True, slots=True)
class Price:
    """A unit price of a supply, for example 42.5 PLN per sheet."""

    value: float
    currency: str
    """ISO 4217 code, e.g. ``PLN``."""
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "currency": self.currency, "unit": self.unit}


# Fields an owner's policy may let out. The envelope (schema, cluster, member, resource, kind,
# generated_at) is always sent because without it a message cannot be routed or stored, and so
# are ``audience`` and ``expires_at`` when the policy sets them, and ``accepts_requests``,
# because the aggregator enforces them. ``free_hours_band`` is how ``free_hours`` leaves when the
# policy shows it as a band.
OPTIONAL_FIELDS = (
    "name",
    "capabilities",
    "state",
    "state_since",
    "horizon",
    "free_hours",
    "free_intervals",
    "amounts",
    "price",
    "suppliers",
    "customers",
)
# Commercial data of supplies: it leaves only where a rule lists the field by name.
COMMERCIAL_FIELDS = ("price", "suppliers", "customers")


@dataclass(frozen=True, slots=True)
class Offer:
    """One member's offer for one resource. ``None`` fields are left out of the payload."""

    cluster: str
    member: str
    resource: str
    kind: ResourceKind
    generated_at: datetime
    name: str | None = None
    capabilities: tuple[str, ...] | None = None
    state: MachineState | None = None
    state_since: datetime | None = None
    horizon: Interval | None = None
    free_hours: float | None = None
    free_intervals: tuple[Interval, ...] | None = None
    amounts: tuple[Amount, ...] | None = field(default=None)
    free_hours_band: Band | None = None
    price: Price | None = None
    suppliers: tuple[str, ...] | None = None
    customers: tuple[str, ...] | None = None
    audience: tuple[str, ...] | None = None
    """Member ids that may see the offer; ``None`` means the whole cluster."""
    expires_at: datetime | None = None
    """When the owner's share ends; the aggregator hides the offer from then on."""
    accepts_requests: bool = False
    """Whether the owner's agent takes capacity requests for this offer. Sent always since 1.2."""
    envelope: Envelope | None = None
    """Message id and sequence number; ``None`` before queueing, or from a 1.0 payload."""

    def to_json(self) -> dict[str, Any]:
        """Return the offer as a JSON-ready dict that validates against the schema."""
        data: dict[str, Any] = {
            "schema": OFFER_SCHEMA_ID,
            "cluster": self.cluster,
            "member": self.member,
            "resource": self.resource,
            "kind": str(self.kind),
            "generated_at": format_time(self.generated_at),
        }
        if self.name is not None:
            data["name"] = self.name
        if self.capabilities is not None:
            data["capabilities"] = list(self.capabilities)
        if self.state is not None:
            data["state"] = str(self.state)
        if self.state_since is not None:
            data["state_since"] = format_time(self.state_since)
        if self.horizon is not None:
            data["horizon"] = _interval_json(self.horizon)
        if self.free_hours is not None:
            data["free_hours"] = round(self.free_hours, 4)
        if self.free_intervals is not None:
            data["free_intervals"] = [_interval_json(item) for item in self.free_intervals]
        if self.amounts is not None:
            data["amounts"] = [amount.to_json() for amount in self.amounts]
        if self.free_hours_band is not None:
            data["free_hours_band"] = self.free_hours_band.to_json()
        if self.price is not None:
            data["price"] = self.price.to_json()
        if self.suppliers is not None:
            data["suppliers"] = list(self.suppliers)
        if self.customers is not None:
            data["customers"] = list(self.customers)
        if self.audience is not None:
            data["audience"] = list(self.audience)
        if self.expires_at is not None:
            data["expires_at"] = format_time(self.expires_at)
        data["accepts_requests"] = self.accepts_requests
        if self.envelope is not None:
            data["message_id"] = self.envelope.message_id
            data["seq"] = self.envelope.seq
        return data

    def with_envelope(self, envelope: Envelope | None) -> Offer:
        """Return a copy of the offer carrying ``envelope``."""
        return replace(self, envelope=envelope)

    def to_payload(self) -> bytes:
        """Return the UTF-8 JSON payload published over MQTT.

        Raises ``ValueError`` naming the field when a number is NaN or infinite.
        """
        return dump_standard_json(self.to_json(), "offer")


@cache
def offer_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``kooperant.offer/1.x`` as a dict."""
    text = files("kooperant.protocol").joinpath("offer.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _schema_check() -> SchemaCheck:
    return SchemaCheck(offer_json_schema())


def parse_offer(payload: bytes) -> Offer:
    """Return the ``Offer`` in ``payload``, or raise ``OfferValidationError`` saying why not.

    An offer of a newer minor version loses the top-level fields this version does not know.
    """
    check_payload_size(payload)
    try:
        data = load_standard_json(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise OfferValidationError(f"payload is not UTF-8: {error}") from error
    except json.JSONDecodeError as error:
        raise OfferValidationError(f"payload is not JSON: {error}") from error

    known_fields = offer_json_schema()["properties"].keys()
    data = accept_schema_version(data, _OFFER_VERSION, known_fields, "an offer", _ADDED_IN_MINOR)
    envelope = envelope_of(data)
    _check_schema(data)
    return _offer_from_json(data, envelope)


def check_payload_size(payload: bytes) -> None:
    """Raise ``OfferValidationError`` if ``payload`` is longer than ``MAX_PAYLOAD_BYTES``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise OfferValidationError(
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes"
        )


def envelope_of(data: object) -> Envelope | None:
    """Return the envelope of a decoded message, or raise ``OfferValidationError`` saying why not.

    It runs before JSON Schema validation, so a bad ``message_id`` or ``seq`` gets its own reason.
    """
    if not isinstance(data, Mapping):
        return None
    try:
        return parse_envelope(data)
    except ValueError as error:
        raise OfferValidationError(str(error)) from error


def load_standard_json(text: str) -> Any:
    """Parse ``text`` as standard JSON (RFC 8259), rejecting numbers that a float cannot hold.

    Python's ``json`` turns ``NaN``, ``Infinity`` and ``-Infinity`` (which are not JSON) and
    ``1e999`` into non-finite floats, which a database stores as NULL. It turns an integer too
    large for a float into an int that ``float()`` rejects with ``OverflowError``. Here each of
    them raises ``OfferValidationError`` naming the token, and so does nesting deeper than the
    recursion limit.
    """
    if text.startswith("\ufeff"):
        # The check and the message of json.loads, which _DECODER.decode lacks.
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        return _DECODER.decode(text)
    except RecursionError as error:
        # The decoder recurses once per nested array or object, so a payload such as 100,000
        # opening brackets exhausts Python's recursion limit before it fails as JSON.
        raise OfferValidationError(
            "invalid payload: its arrays and objects are nested too deeply; "
            "no kooperant message nests more than a few levels"
        ) from error


def _reject_constant(token: str) -> NoReturn:
    raise OfferValidationError(
        f"payload is not standard JSON: {token} is not a JSON number; "
        "send a finite number, or leave the field out when the value is unknown"
    )


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise OfferValidationError(_out_of_range(token))
    return value


def _float_sized_int(token: str) -> int:
    try:
        value = int(token)
        float(value)
    except (ValueError, OverflowError):
        # int() raises ValueError above 4300 digits, float() OverflowError above about 1.8e308.
        raise OfferValidationError(_out_of_range(token)) from None
    return value


def _out_of_range(token: str) -> str:
    return f"number {_shorten(token)} in the payload is out of range; the limit is about 1.8e308"


# One decoder and one encoder for every call, because json.loads and json.dumps build a new one
# whenever an option is given, which costs as much as decoding or encoding a small message.
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_float_sized_int
)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dump_standard_json(data: Mapping[str, Any], message: str) -> bytes:
    """Return ``data`` as compact UTF-8 JSON, or raise ``ValueError`` naming a non-finite field.

    ``message`` names the message in the error, for example ``"offer"``.
    """
    try:
        text = _ENCODER.encode(data)
    except ValueError as error:
        found = _first_non_finite(data)
        if found is None:
            raise
        where, value = found
        raise ValueError(
            f"{message} cannot be sent: {where} is {value}, and JSON has no NaN or infinity"
        ) from error
    return text.encode()


def _first_non_finite(
    data: object, where: str = "", containers: frozenset[int] = frozenset()
) -> tuple[str, float] | None:
    """Return the path and value of the first NaN or infinite float in ``data``, else None.

    ``containers`` contains the ids of the enclosing dicts and lists, so a cycle ends the search.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return where or "(root)", data
    if id(data) in containers:
        return None
    children: list[tuple[str, object]] = []
    if isinstance(data, Mapping):
        children = [(str(key), value) for key, value in data.items()]
    elif isinstance(data, list | tuple):
        children = [(str(index), value) for index, value in enumerate(data)]
    inside = containers | {id(data)}
    for key, value in children:
        found = _first_non_finite(value, f"{where}/{key}" if where else key, inside)
        if found is not None:
            return found
    return None


def _check_schema(data: object) -> None:
    errors = _schema_check().errors(data)
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        reason = pattern_reason(first, where) or f"schema violation at {where}: {first.message}"
        raise OfferValidationError(reason + more)


def pattern_reason(error: ValidationError, where: str) -> str | None:
    """Return a readable reason for a failed identifier or timestamp pattern, else None.

    jsonschema's own text for a pattern failure repeats the regular expression.
    """
    if error.validator != "pattern":
        return None
    definitions = offer_json_schema()["$defs"]
    quoted_value = _shorten(error.instance)
    if error.validator_value == definitions["timestamp"]["pattern"]:
        return (
            f"invalid date-time {quoted_value} at {where}: expected RFC 3339 with a UTC offset, "
            "e.g. 2026-12-04T14:00:00+01:00"
        )
    if error.validator_value == definitions["identifier"]["pattern"]:
        return (
            f"invalid id {quoted_value} at {where}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return None


_SHOWN_CHARACTERS = 100


def _shorten(value: object) -> str:
    """Return the repr of ``value``, cut to its first characters if it is long.

    A payload may be up to 1 MB, and the aggregator logs and stores the reason of every rejected
    offer.
    """
    if isinstance(value, str) and len(value) > _SHOWN_CHARACTERS:
        return f"{value[:_SHOWN_CHARACTERS]!r}... ({len(value)} characters)"
    return repr(value)


def _offer_from_json(data: Mapping[str, Any], envelope: Envelope | None) -> Offer:
    horizon = _parse_interval(data["horizon"], "horizon") if "horizon" in data else None
    free_intervals = None
    if "free_intervals" in data:
        free_intervals = tuple(
            _parse_interval(item, f"free_intervals/{index}")
            for index, item in enumerate(data["free_intervals"])
        )
    amounts = None
    if "amounts" in data:
        amounts = tuple(
            _parse_amount(item, f"amounts/{index}") for index, item in enumerate(data["amounts"])
        )
    price = None
    if "price" in data:
        item = data["price"]
        price = Price(float(item["value"]), item["currency"], item["unit"])
    return Offer(
        cluster=data["cluster"],
        member=data["member"],
        resource=data["resource"],
        kind=ResourceKind(data["kind"]),
        generated_at=parse_time(data["generated_at"], "generated_at"),
        name=data.get("name"),
        capabilities=tuple(data["capabilities"]) if "capabilities" in data else None,
        state=MachineState(data["state"]) if "state" in data else None,
        state_since=parse_time(data["state_since"], "state_since")
        if "state_since" in data
        else None,
        horizon=horizon,
        free_hours=float(data["free_hours"]) if "free_hours" in data else None,
        free_intervals=free_intervals,
        amounts=amounts,
        free_hours_band=_parse_band(data["free_hours_band"], "free_hours_band")
        if "free_hours_band" in data
        else None,
        price=price,
        suppliers=tuple(data["suppliers"]) if "suppliers" in data else None,
        customers=tuple(data["customers"]) if "customers" in data else None,
        audience=tuple(data["audience"]) if "audience" in data else None,
        expires_at=parse_time(data["expires_at"], "expires_at") if "expires_at" in data else None,
        accepts_requests=data.get("accepts_requests", False),
        envelope=envelope,
    )


def _parse_band(data: Mapping[str, Any], where: str) -> Band:
    maximum = data["max"]
    try:
        return Band(float(data["min"]), float(maximum) if maximum is not None else None)
    except ValueError as error:
        raise OfferValidationError(f"invalid band at {where}: {error}") from error


def _parse_amount(data: Mapping[str, Any], where: str) -> Amount:
    value = float(data["value"]) if "value" in data else None
    band = _parse_band(data["band"], f"{where}/band") if "band" in data else None
    return Amount(data["quantity"], value, data["unit"], data.get("label"), band)


def parse_time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        # The schema pattern has passed, so this is a value out of range, such as month 13.
        raise OfferValidationError(f"invalid date-time {text!r} at {where}: {error}") from error
    if value.tzinfo is None:
        raise OfferValidationError(f"date-time at {where} has no UTC offset: {text!r}")
    return value


def _parse_interval(data: Mapping[str, str], where: str) -> Interval:
    start = parse_time(data["start"], f"{where}/start")
    end = parse_time(data["end"], f"{where}/end")
    if end < start:
        raise OfferValidationError(f"interval at {where} ends before it starts")
    return Interval(start, end)


def format_time(value: datetime, timespec: str = "seconds") -> str:
    """Return ``value`` as RFC 3339 text with its offset, to the precision ``timespec``."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value} cannot be sent; attach a time zone")
    if _AUTO_TIMESPEC_AGREES.get((timespec, value.microsecond != 0), False):
        # isoformat() without an argument takes half the time of isoformat(timespec=...).
        return value.isoformat()
    return value.isoformat(timespec=timespec)


# Whether isoformat()'s own choice ("auto": microseconds only when they are not 0) writes the
# same text as a given timespec, by timespec and whether the microseconds are not 0.
_AUTO_TIMESPEC_AGREES = {
    ("auto", False): True,
    ("auto", True): True,
    ("seconds", False): True,
    ("microseconds", True): True,
}


def _interval_json(interval: Interval) -> dict[str, str]:
    return {"start": format_time(interval.start), "end": format_time(interval.end)}
