"""Holds: capacity the owner promised by accepting a request, taken out of the offers.

An accepted request with a ``slot`` holds that time of the machine: the slot is subtracted from
the offer's free intervals, and ``free_hours`` is computed again from what is left. The hold
ends when the ERP schedule (the ``ScheduledWork`` orders of that machine) covers the whole slot,
because from then on the order itself keeps the time out of the offer. It also ends when the
slot's end passes, or when the owner runs ``kooperant agent release``.

An accepted request with an ``amount`` subtracts its value from the offer's amount with the same
quantity, unit and label, down to 0, until the owner releases it.

A request names the offer by its public id, so a hold applies to the internal resource whose own
id or ``publish_as`` id in the current policy equals it. Holds are applied to the offers before
the policy, so a band or a hidden field of the policy also covers the reduced values.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from adapters.base import Observation, ScheduledWork
from agent.requests import StoredRequest
from kooperant.intervals import Interval, subtract, total_hours
from kooperant.protocol import Amount, Offer
from kooperant.protocol.request import RequestedAmount


@dataclass(frozen=True, slots=True)
class Hold:
    """The slot or amount one accepted request takes out of the offer of ``resource``."""

    request_id: str
    resource: str
    """The public id of the offer, as in the request."""
    slot: Interval | None = None
    amount: RequestedAmount | None = None


@dataclass(frozen=True, slots=True)
class HeldOffers:
    """Offers with the holds taken out, and the holds the ERP schedule ended."""

    offers: tuple[Offer, ...]
    scheduled: tuple[str, ...] = ()
    """Ids of the requests whose whole slot the ERP schedule now covers."""


def current_holds(stored: Iterable[StoredRequest], now: datetime) -> tuple[Hold, ...]:
    """Return the holds of the stored requests that hold their slot or amount at ``now``."""
    return tuple(
        Hold(item.request_id, item.request.resource, item.request.slot, item.request.amount)
        for item in stored
        if item.holding(now)
    )


def scheduled_orders(observations: Iterable[Observation]) -> dict[str, list[Interval]]:
    """Return the ERP orders of each resource that has a ``ScheduledWork`` observation."""
    orders: dict[str, list[Interval]] = {}
    for observation in observations:
        if isinstance(observation, ScheduledWork):
            intervals = orders.setdefault(observation.resource, [])
            intervals.extend(order.interval for order in observation.orders)
    return orders


def apply_holds(
    offers: Iterable[Offer],
    holds: Iterable[Hold],
    public_ids: Mapping[str, set[str]],
    orders: Mapping[str, list[Interval]],
) -> HeldOffers:
    """Take every hold out of the offer it names; report holds the ERP schedule now covers.

    ``public_ids`` maps an internal resource id to its ``publish_as`` ids, and ``orders`` maps it
    to the intervals its ERP schedule covers.
    """
    by_resource: dict[str, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_resource[hold.resource].append(hold)

    result = []
    scheduled: list[str] = []
    for offer in offers:
        names = {offer.resource, *public_ids.get(offer.resource, ())}
        matching = [hold for name in sorted(names) for hold in by_resource.get(name, ())]
        if not matching:
            result.append(offer)
            continue
        busy = orders.get(offer.resource, [])
        slots = []
        for hold in matching:
            if hold.slot is None:
                continue
            if busy and not subtract([hold.slot], busy):
                scheduled.append(hold.request_id)
            else:
                slots.append(hold.slot)
        amounts = [hold.amount for hold in matching if hold.amount is not None]
        result.append(_without_amounts(_without_slots(offer, slots), amounts))
    return HeldOffers(tuple(result), tuple(scheduled))


def _without_slots(offer: Offer, slots: list[Interval]) -> Offer:
    if not slots or offer.free_intervals is None:
        return offer
    free = tuple(subtract(offer.free_intervals, slots))
    return dataclasses.replace(offer, free_intervals=free, free_hours=total_hours(free))


def _without_amounts(offer: Offer, held: list[RequestedAmount]) -> Offer:
    # NOTE: an amount hold has no automatic end. An amount has no time to pass, and the adapters
    # report the current stock or free capacity, from which the agent cannot tell whether the
    # promised amount was already taken out. Only the owner can tell, by running release.
    if not held or offer.amounts is None:
        return offer
    reduced = []
    for amount in offer.amounts:
        taken = sum(item.value for item in held if _same_amount(amount, item))
        if taken and amount.value is not None:
            amount = dataclasses.replace(amount, value=max(0.0, amount.value - taken))
        reduced.append(amount)
    return dataclasses.replace(offer, amounts=tuple(reduced))


def _same_amount(amount: Amount, held: RequestedAmount) -> bool:
    return (amount.quantity, amount.unit, amount.label) == (held.quantity, held.unit, held.label)
