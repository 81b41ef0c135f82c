"""Whether an offer takes capacity requests now, for the inbox's automatic decline.

The latest offer payload queued or sent for a resource may predate the policy in force, because
the owner may have switched requests off, or removed the rule, while the agent was stopped. An
adapter that has not reported since the start also leaves its resource out of the first cycles.
So the runner gives the inbox a ``CycleDecisions`` after each cycle. It answers from that cycle's
plan where the plan decided the public id. Otherwise it answers from the latest payload, checked
against the current policy's rules.

A decision is ``True`` (the offer takes requests), ``False`` (it is published without taking
requests) or ``None`` (it is not published).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.policy import Policy, Rule
from agent.resource_ids import policy_public_ids
from kooperant.protocol import Offer, ResourceKind

OfferDecision = Callable[[str, bytes | None], bool | None]
"""Decides for a public resource id, given its latest offer payload, whether it takes requests."""


def payload_decision(resource: str, offer_payload: bytes | None) -> bool | None:
    """Decide from the latest offer payload alone: ``None`` when there is none or it was cleared."""
    offer = _offer_json(offer_payload)
    if offer is None:
        return None
    return offer.get("accepts_requests") is True


def offer_decisions(offers: Iterable[Offer], withdrawn: Iterable[str]) -> dict[str, bool | None]:
    """Map each offer's public id to its ``accepts_requests``, and each id in ``withdrawn`` to None.

    An id both offered and withdrawn counts as offered, because the publisher then sends the offer.
    """
    decisions: dict[str, bool | None] = dict.fromkeys(withdrawn)
    decisions.update((offer.resource, offer.accepts_requests) for offer in offers)
    return decisions


class CycleDecisions:
    """The decisions of one cycle's plan, with the policy of that cycle for the other ids."""

    def __init__(
        self,
        decisions: Mapping[str, bool | None],
        policy: Policy,
        tags: Mapping[str, frozenset[str]],
        now: datetime,
        zone: ZoneInfo,
    ) -> None:
        self.decisions = dict(decisions)
        self._policy = policy
        self._tags = tags
        self._now = now
        self._zone = zone

    def __call__(self, resource: str, offer_payload: bytes | None) -> bool | None:
        if resource in self.decisions:
            return self.decisions[resource]
        from_payload = payload_decision(resource, offer_payload)
        if from_payload is not True:
            return from_payload
        # The offer went out taking requests, so only the current policy can decide otherwise.
        offer = _offer_json(offer_payload) or {}
        try:
            kind = ResourceKind(str(offer.get("kind")))
        except ValueError:
            return from_payload
        return self._policy_decision(resource, kind)

    def _policy_decision(self, public_id: str, kind: ResourceKind) -> bool | None:
        """Decide by the first rule that applies to an internal id published as ``public_id``."""
        renamed = policy_public_ids(self._policy)
        internal_ids = {public_id} | {
            resource for resource, public in renamed.items() if public_id in public
        }
        for resource in sorted(internal_ids):
            rule = self._first_rule(resource, kind)
            if rule is not None and rule.public_id(resource) == public_id:
                return rule.accepts_requests
        return None

    def _first_rule(self, resource: str, kind: ResourceKind) -> Rule | None:
        """Return the first rule that matches ``resource`` and has not expired, as the policy
        decides an offer."""
        tags = self._tags.get(resource, frozenset())
        for rule in self._policy.rules:
            if rule.matches(resource, kind, tags) and not rule.expired(self._now, self._zone):
                return rule
        return None


def _offer_json(payload: bytes | None) -> dict[str, Any] | None:
    """Return the payload's JSON object, ``{}`` for an invalid one, ``None`` for no payload."""
    if not payload:
        return None
    try:
        offer = json.loads(payload)
    except ValueError:
        return {}
    return offer if isinstance(offer, dict) else {}
