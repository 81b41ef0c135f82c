"""Checks of what an adapter's ``collect()`` returned, before it reaches the offers.

An adapter of another package may return a value the offers cannot carry: a resource id that no
topic allows, an infinite amount, a time without a time zone, or an object that is no observation.
Any of these used to stop the whole agent when the offer was built or sent. The agent leaves out
each such observation and publishes the rest. The rules are those of the conformance kit, so an
adapter that passes the kit loses nothing here.
"""

from __future__ import annotations

from kooperant.adapter_kit.rules import ConformanceError
from kooperant.adapter_kit.values import check_observation


def observation_problem(observation: object) -> str | None:
    """Return why ``observation`` cannot be offered, or None when it can."""
    try:
        check_observation(observation)
    except ConformanceError as error:
        return str(error)
    return None
