"""Checks of what an adapter's ``collect()`` returned, before it reaches the offers.

An adapter of another package may return a value the offers cannot carry: a resource id that no
topic allows, an infinite amount, a time without a time zone, or an object that is no observation.
Any of these used to stop the whole agent when the offer was built or sent. The agent now leaves
out each such observation, logs the adapter, resource and problem once, and publishes the rest.
"""

from __future__ import annotations

import math
from datetime import datetime

from adapters.base import MachineStatus, ResourceAmounts, ScheduledWork, SupplyStock
from kooperant.protocol import Amount, TopicError, check_identifier

OBSERVATION_TYPES = (MachineStatus, ScheduledWork, ResourceAmounts, SupplyStock)


def observation_problem(observation: object) -> str | None:
    """Return why ``observation`` cannot be offered, or None when it can."""
    if not isinstance(observation, OBSERVATION_TYPES):
        names = ", ".join(kind.__name__ for kind in OBSERVATION_TYPES)
        return f"{type(observation).__name__} is not an observation ({names})"
    try:
        check_identifier(observation.resource, "resource")
    except TopicError as error:
        return str(error)

    if isinstance(observation, MachineStatus):
        return _naive_time(observation.since, "since")
    if isinstance(observation, ScheduledWork):
        # An order's Interval rejects naive datetimes when it is made.
        return None
    problem = _amounts_problem(observation.amounts)
    price = observation.price if isinstance(observation, SupplyStock) else None
    if problem is None and price is not None and not math.isfinite(price.value):
        problem = f"price is {price.value}; prices must be finite"
    return problem


def _naive_time(moment: datetime, label: str) -> str | None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return f"{label} {moment.isoformat()} has no time zone; use an aware datetime"
    return None


def _amounts_problem(amounts: tuple[Amount, ...]) -> str | None:
    for amount in amounts:
        if amount.value is not None and not math.isfinite(amount.value):
            return f"amount {amount.quantity!r} is {amount.value}; amounts must be finite"
    return None
