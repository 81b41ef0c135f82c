"""The capacity check that ``kooperant agent accept`` runs before it promises a slot or amount.

The check compares the request with two things: the requests that hold capacity now, and the
latest offer payload the agent queued or sent for the request's resource. That offer already
leaves out the ERP orders and the holds the agent knew when it built the offer. A hold accepted
after the offer was built is not in it yet: its slot is caught by the overlap check, and its
amount is subtracted from the offer's value here.

The owner can skip the check with ``accept --force``, for example when the policy rounds the
offered amount down.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kooperant.intervals import Interval, normalize
from kooperant.protocol.request import CapacityRequest, RequestedAmount


class Conflict(StrEnum):
    """The reason that accepting a request would promise capacity that is not free."""

    OVERLAP = "overlap"
    """The slot overlaps the slot of another request that holds it."""
    NOT_OFFERED = "not_offered"
    """No offer of the resource is published: there is none, or it was taken back."""
    NO_REQUESTS = "no_requests"
    """The latest offer does not take requests (``accepts_requests`` is not true)."""
    SLOT_NOT_FREE = "slot_not_free"
    """The slot is not inside the latest offer's ``free_intervals``."""
    AMOUNT_ABOVE = "amount_above"
    """The requested value is above the free value of the matching amount."""


class Unchecked(StrEnum):
    """A check skipped because the latest offer does not show the field it needs."""

    FREE_INTERVALS = "free_intervals"
    AMOUNT = "amount"


class CapacityConflictError(Exception):
    """Raised by ``check_capacity`` when the request's slot or amount is not free."""

    def __init__(
        self,
        request: CapacityRequest,
        conflict: Conflict,
        *,
        others: Sequence[str] = (),
        available: float | None = None,
    ) -> None:
        self.request = request
        self.conflict = conflict
        self.others = tuple(others)
        """Ids of the holding requests that take the capacity."""
        self.available = available
        """The free value of the matching amount, for ``AMOUNT_ABOVE``."""
        super().__init__(f"request {request.request_id} conflicts: {conflict}")


@dataclass(frozen=True, slots=True)
class HeldCapacity:
    """One request that holds capacity now, and when the owner accepted it."""

    request: CapacityRequest
    accepted_at: datetime


def check_capacity(
    request: CapacityRequest, offer_payload: bytes | None, holding: Iterable[HeldCapacity]
) -> tuple[Unchecked, ...]:
    """Raise ``CapacityConflictError`` when ``request`` asks for capacity that is not free.

    ``offer_payload`` is the latest offer queued or sent for the request's resource, ``None``
    when there is none or it was taken back. ``holding`` lists the requests that hold capacity
    now. Returns the checks skipped because the offer does not show the field they need.
    """
    others = [item for item in holding if _same_offer(item.request, request)]
    _check_overlap(request, others)
    offer = _offer_json(offer_payload)
    if offer is None:
        raise CapacityConflictError(request, Conflict.NOT_OFFERED)
    if offer.get("accepts_requests") is not True:
        raise CapacityConflictError(request, Conflict.NO_REQUESTS)

    unchecked: list[Unchecked] = []
    if request.slot is not None and not _check_slot(request, request.slot, offer):
        unchecked.append(Unchecked.FREE_INTERVALS)
    if request.amount is not None and not _check_amount(request, request.amount, offer, others):
        unchecked.append(Unchecked.AMOUNT)
    return tuple(unchecked)


def still_held(released: CapacityRequest, holding: Iterable[CapacityRequest]) -> list[str]:
    """Return the ids of the requests in ``holding`` that hold part of the slot or amount of
    ``released``: an overlapping slot, or an amount with the same quantity, unit and label."""
    return [other.request_id for other in holding if _shares_capacity(other, released)]


def _shares_capacity(other: CapacityRequest, released: CapacityRequest) -> bool:
    if not _same_offer(other, released):
        return False
    if released.slot is not None and other.slot is not None:
        return other.slot.overlaps(released.slot)
    if released.amount is not None and other.amount is not None:
        return _same_amount(other.amount, released.amount)
    return False


def _same_offer(other: CapacityRequest, request: CapacityRequest) -> bool:
    return other.request_id != request.request_id and other.resource == request.resource


def _check_overlap(request: CapacityRequest, others: Iterable[HeldCapacity]) -> None:
    slot = request.slot
    if slot is None:
        return
    overlapping = [
        item.request.request_id
        for item in others
        if item.request.slot is not None and item.request.slot.overlaps(slot)
    ]
    if overlapping:
        raise CapacityConflictError(request, Conflict.OVERLAP, others=overlapping)


def _check_slot(request: CapacityRequest, slot: Interval, offer: dict[str, Any]) -> bool:
    """Raise for a slot outside the offer's free intervals; return False when it has none."""
    free = _intervals(offer.get("free_intervals"))
    if free is None:
        return False
    if not any(item.start <= slot.start and slot.end <= item.end for item in normalize(free)):
        raise CapacityConflictError(request, Conflict.SLOT_NOT_FREE)
    return True


def _check_amount(
    request: CapacityRequest,
    amount: RequestedAmount,
    offer: dict[str, Any],
    others: Iterable[HeldCapacity],
) -> bool:
    """Raise for an amount above the free value; return False when the offer shows no value."""
    value = _offered_value(offer, amount)
    if value is None:
        return False
    built_at = _time(offer.get("generated_at"))
    # A hold accepted at or after the offer's reading time (generated_at, whole seconds) may be
    # missing from its value, so it is subtracted here. One accepted in the same second but read
    # by the runner before the offer was built is counted twice, which errs towards rejecting.
    # NOTE: a hold committed between the runner's read of the holds and the reading time, across
    # a second boundary, is missing from the value but counted as in it.
    newer = [
        item
        for item in others
        if item.request.amount is not None
        and _same_amount(item.request.amount, amount)
        and (built_at is None or item.accepted_at >= built_at)
    ]
    available = max(0.0, value - sum(_held_value(item) for item in newer))
    if amount.value > available:
        others_ids = [item.request.request_id for item in newer]
        raise CapacityConflictError(
            request, Conflict.AMOUNT_ABOVE, others=others_ids, available=available
        )
    return True


def _held_value(item: HeldCapacity) -> float:
    assert item.request.amount is not None  # filtered by the caller
    return item.request.amount.value


def _same_amount(first: RequestedAmount, second: RequestedAmount) -> bool:
    return (first.quantity, first.unit, first.label) == (second.quantity, second.unit, second.label)


def _offered_value(offer: dict[str, Any], amount: RequestedAmount) -> float | None:
    amounts = offer.get("amounts")
    if not isinstance(amounts, list):
        return None
    for item in amounts:
        if not isinstance(item, dict):
            continue
        key = (item.get("quantity"), item.get("unit"), item.get("label"))
        value = item.get("value")
        if key == (amount.quantity, amount.unit, amount.label) and isinstance(value, int | float):
            return float(value)
    return None


def _offer_json(payload: bytes | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    try:
        offer = json.loads(payload)
    except ValueError:
        return {}
    return offer if isinstance(offer, dict) else {}


def _intervals(value: object) -> list[Interval] | None:
    if not isinstance(value, list):
        return None
    intervals = []
    for item in value:
        start = _time(item.get("start")) if isinstance(item, dict) else None
        end = _time(item.get("end")) if isinstance(item, dict) else None
        if start is None or end is None or end <= start:
            return None
        intervals.append(Interval(start, end))
    return intervals


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
