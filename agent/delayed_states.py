"""Machine offers rebuilt from the states of the past, for rules with ``delay_minutes``.

Free time depends on the machine state: a machine that is out of service counts as down until the
end of its shift. A rule that delays the state would leak the live state through the free time,
so a machine it matches has its availability computed again from the state that was in force
``delay_minutes`` ago, as the agent's ``StateHistory`` records it. When no state is known for that
moment, the offer is computed for the state ``Unknown``, which implies no downtime, and the policy
then leaves the state out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from adapters.base import MachineStatus, Observation
from agent.offers import OfferBuilder
from agent.policy import Policy, PolicyContext
from kooperant.protocol import MachineState, Offer, ResourceKind


def with_delayed_states(
    offers: Sequence[Offer],
    observations: Sequence[Observation],
    policy: Policy,
    context: PolicyContext,
    builder: OfferBuilder,
    withheld: Mapping[ResourceKind, str],
) -> tuple[Offer, ...]:
    """Return ``offers`` with each delayed machine rebuilt from its state ``delay_minutes`` ago."""
    past = _past_statuses(offers, observations, policy, context)
    if not past:
        return tuple(offers)

    other_observations = [
        observation
        for observation in observations
        if not (isinstance(observation, MachineStatus) and observation.resource in past)
    ]
    replaced = list(past.values())
    built = builder.build([*other_observations, *replaced], context.now, withheld)
    rebuilt = {offer.resource: offer for offer in built}
    return tuple(
        dataclasses.replace(rebuilt[offer.resource], generated_at=offer.generated_at)
        if offer.resource in past
        else offer
        for offer in offers
    )


def _past_statuses(
    offers: Sequence[Offer],
    observations: Sequence[Observation],
    policy: Policy,
    context: PolicyContext,
) -> dict[str, MachineStatus]:
    """Return the status to compute each delayed machine from, by resource id."""
    live = {
        observation.resource: observation
        for observation in observations
        if isinstance(observation, MachineStatus)
    }
    past: dict[str, MachineStatus] = {}
    for offer in offers:
        if offer.kind is not ResourceKind.MACHINE:
            continue
        rule = policy.rule_for(offer, context)
        if rule is None or rule.delay_minutes is None:
            continue
        moment: datetime = context.now - timedelta(minutes=rule.delay_minutes)
        found = context.history.state_at(offer.resource, moment) if context.history else None
        state, since = found if found is not None else (MachineState.UNKNOWN, context.now)
        current = live.get(offer.resource)
        if current is not None:
            past[offer.resource] = dataclasses.replace(current, state=state, since=since)
        else:
            past[offer.resource] = MachineStatus(offer.resource, state, since)
    return past
