"""The offer message, schema ``kooperant.offer/1``.

The agent builds an ``Offer`` and serialises it with ``Offer.to_payload``. The aggregator turns
received bytes back into an ``Offer`` with ``parse_offer``, which checks them against the JSON
Schema in ``offer.schema.json`` and then checks what a schema cannot express (real dates, interval
order).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from kooperant.intervals import Interval

OFFER_SCHEMA_ID = "kooperant.offer/1"
MAX_PAYLOAD_BYTES = 1_000_000


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


class OfferValidationError(ValueError):
    """Raised by ``parse_offer`` for a payload that is not a valid offer, with the reason."""


@dataclass(frozen=True, slots=True)
class Amount:
    """A measured quantity, for example 120.5 GiB of free disk on ``/``."""

    quantity: str
    value: float
    unit: str
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"quantity": self.quantity, "value": self.value, "unit": self.unit}
        if self.label is not None:
            data["label"] = self.label
        return data


# Fields an owner's policy may let out. The envelope (schema, cluster, member, resource, kind,
# generated_at) is always sent because without it a message cannot be routed or stored.
OPTIONAL_FIELDS = (
    "name",
    "capabilities",
    "state",
    "state_since",
    "horizon",
    "free_hours",
    "free_intervals",
    "amounts",
)


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

    def to_json(self) -> dict[str, Any]:
        """Return the offer as a JSON-ready dict that validates against the schema."""
        data: dict[str, Any] = {
            "schema": OFFER_SCHEMA_ID,
            "cluster": self.cluster,
            "member": self.member,
            "resource": self.resource,
            "kind": str(self.kind),
            "generated_at": _format_time(self.generated_at),
        }
        if self.name is not None:
            data["name"] = self.name
        if self.capabilities is not None:
            data["capabilities"] = list(self.capabilities)
        if self.state is not None:
            data["state"] = str(self.state)
        if self.state_since is not None:
            data["state_since"] = _format_time(self.state_since)
        if self.horizon is not None:
            data["horizon"] = _interval_json(self.horizon)
        if self.free_hours is not None:
            data["free_hours"] = round(self.free_hours, 4)
        if self.free_intervals is not None:
            data["free_intervals"] = [_interval_json(item) for item in self.free_intervals]
        if self.amounts is not None:
            data["amounts"] = [amount.to_json() for amount in self.amounts]
        return data

    def to_payload(self) -> bytes:
        """Return the UTF-8 JSON payload published over MQTT."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode()


@cache
def offer_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``kooperant.offer/1`` as a dict."""
    text = files("kooperant.protocol").joinpath("offer.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(offer_json_schema())


def parse_offer(payload: bytes) -> Offer:
    """Return the ``Offer`` in ``payload``, or raise ``OfferValidationError`` saying why not."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise OfferValidationError(
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes"
        )
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise OfferValidationError(f"payload is not UTF-8: {error}") from error
    except json.JSONDecodeError as error:
        raise OfferValidationError(f"payload is not JSON: {error}") from error

    _check_schema(data)
    return _offer_from_json(data)


def _check_schema(data: object) -> None:
    if isinstance(data, Mapping) and data.get("schema") not in (None, OFFER_SCHEMA_ID):
        raise OfferValidationError(
            f"unsupported schema {data.get('schema')!r}; this server reads {OFFER_SCHEMA_ID!r}"
        )
    errors = sorted(_validator().iter_errors(data), key=lambda error: list(error.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        reason = _pattern_reason(first, where) or f"schema violation at {where}: {first.message}"
        raise OfferValidationError(reason + more)


def _pattern_reason(error: ValidationError, where: str) -> str | None:
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


def _offer_from_json(data: Mapping[str, Any]) -> Offer:
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
            Amount(item["quantity"], float(item["value"]), item["unit"], item.get("label"))
            for item in data["amounts"]
        )
    return Offer(
        cluster=data["cluster"],
        member=data["member"],
        resource=data["resource"],
        kind=ResourceKind(data["kind"]),
        generated_at=_parse_time(data["generated_at"], "generated_at"),
        name=data.get("name"),
        capabilities=tuple(data["capabilities"]) if "capabilities" in data else None,
        state=MachineState(data["state"]) if "state" in data else None,
        state_since=_parse_time(data["state_since"], "state_since")
        if "state_since" in data
        else None,
        horizon=horizon,
        free_hours=float(data["free_hours"]) if "free_hours" in data else None,
        free_intervals=free_intervals,
        amounts=amounts,
    )


def _parse_time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        # The schema pattern has passed, so this is a value out of range, such as month 13.
        raise OfferValidationError(f"invalid date-time {text!r} at {where}: {error}") from error
    if value.tzinfo is None:
        raise OfferValidationError(f"date-time at {where} has no UTC offset: {text!r}")
    return value


def _parse_interval(data: Mapping[str, str], where: str) -> Interval:
    start = _parse_time(data["start"], f"{where}/start")
    end = _parse_time(data["end"], f"{where}/end")
    if end < start:
        raise OfferValidationError(f"interval at {where} ends before it starts")
    return Interval(start, end)


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value} cannot be sent; attach a time zone")
    return value.isoformat(timespec="seconds")


def _interval_json(interval: Interval) -> dict[str, str]:
    return {"start": _format_time(interval.start), "end": _format_time(interval.end)}
