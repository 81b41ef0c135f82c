"""The policy's decision on one offer: withheld, or shared in a transformed, public form."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import Problem
from agent.policy.context import PolicyContext
from agent.policy.lint import lint_policy
from agent.policy.notes import Note
from agent.policy.rules import Rule, expand_fields
from agent.policy.transform import transform_offer
from kooperant.protocol import OPTIONAL_FIELDS, Offer, ResourceKind


class WithheldReason(StrEnum):
    """Reason the policy withholds the offer of a resource."""

    NO_RULE = "no_rule"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one offer: what may leave, and which rule decided it."""

    resource: str
    """The internal resource id of the offer."""
    offer: Offer | None
    """The public, transformed offer, or ``None`` when it is withheld."""
    rule: Rule | None
    """The rule that applied, or the expired rule that withheld the offer."""
    removed: tuple[str, ...] = ()
    """Fields the offer had and the rule left out, in protocol order."""
    withheld: WithheldReason | None = None
    public_resource: str | None = None
    """The id the offer is published under, set whenever a rule matched, even an expired one."""
    transformations: tuple[str, ...] = ()
    """Changes the rule made, in English, e.g. ``free_intervals rounded to shift``."""
    notes: tuple[Note, ...] = ()
    """The same changes as message codes with values, for localized output."""
    expired_at: datetime | None = None
    """When the rule that withheld the offer expired; set only for ``WithheldReason.EXPIRED``."""

    @property
    def shared(self) -> bool:
        return self.offer is not None

    @property
    def reason(self) -> str:
        """Why the offer is shared or withheld, in English, for logs and JSON output."""
        if self.rule is None:
            return f"no rule matches resource {self.resource!r}"
        if self.withheld is WithheldReason.EXPIRED:
            when = "" if self.expired_at is None else f" at {self.expired_at.isoformat()}"
            return f"rule {self.rule.number} ({self.rule.location}) expired{when}"
        return f"shared by rule {self.rule.number} ({self.rule.location})"


class Policy:
    """The owner's rules: deny by default, the first matching rule that has not expired applies.

    ``Policy({"cnc-1": {"name", "free_hours"}})`` builds one rule per resource id with the fields
    given, numbered in the mapping's order, for tests and code that build a policy in place.
    """

    def __init__(
        self,
        rules: Mapping[str, Iterable[str]] | Iterable[Rule] = (),
        *,
        groups: Mapping[str, frozenset[str]] | None = None,
        source: Path | None = None,
        secret_files: tuple[Path, ...] = (),
    ) -> None:
        if isinstance(rules, Mapping):
            rules = [
                Rule(number, expand_fields(fields), resources=frozenset({resource}))
                for number, (resource, fields) in enumerate(rules.items(), start=1)
            ]
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.groups: Mapping[str, frozenset[str]] = dict(groups or {})
        self.source = source
        # Files that ${file:PATH} references of the policy file read; paths only.
        self.secret_files = secret_files

    def __repr__(self) -> str:
        return f"Policy(source={self.source}, rules={len(self.rules)})"

    @property
    def resources(self) -> frozenset[str]:
        """Ids named in the ``resource`` selector of some rule."""
        return frozenset(resource for rule in self.rules for resource in rule.resources)

    def rule_for(self, offer: Offer, context: PolicyContext) -> Rule | None:
        """Return the first matching rule that has not expired, or ``None``."""
        tags = context.tags.get(offer.resource, frozenset())
        for rule in self.rules:
            if rule.matches(offer.resource, offer.kind, tags) and not rule.expired(
                context.expiry_moment, context.zone
            ):
                return rule
        return None

    def decide(self, offer: Offer, context: PolicyContext) -> Decision:
        """Return the public form of ``offer`` under the first rule that applies, or why not."""
        tags = context.tags.get(offer.resource, frozenset())
        expired: Rule | None = None
        for rule in self.rules:
            if not rule.matches(offer.resource, offer.kind, tags):
                continue
            if rule.expired(context.expiry_moment, context.zone):
                expired = expired or rule
                continue
            return _share(offer, rule, context)

        if expired is not None:
            return Decision(
                offer.resource,
                None,
                expired,
                withheld=WithheldReason.EXPIRED,
                public_resource=expired.public_id(offer.resource),
                expired_at=expired.expires_at(context.zone),
            )
        return Decision(offer.resource, None, None, withheld=WithheldReason.NO_RULE)

    def lint(
        self,
        resources: Mapping[str, ResourceKind],
        tags: Mapping[str, frozenset[str]],
        horizon_days: int,
        *,
        now: datetime | None = None,
        zone: ZoneInfo | None = None,
    ) -> list[Problem]:
        """Return warnings about rules that probably do not do what the owner meant.

        ``resources`` are the agent's known resources with their kinds, ``tags`` their tags and
        ``horizon_days`` the agent's horizon. ``now`` (default: the current time) and ``zone``
        (default: UTC) decide which rules have already expired.
        """
        return lint_policy(self.rules, resources, tags, horizon_days, now=now, zone=zone)

    def next_expiry(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """Return the earliest moment after ``after`` at which a rule expires, if any."""
        ends = [rule.expires_at(zone) for rule in self.rules]
        later = [end for end in ends if end is not None and end > after]
        return min(later, default=None)


def _share(offer: Offer, rule: Rule, context: PolicyContext) -> Decision:
    withheld = [name for name in OPTIONAL_FIELDS if name not in rule.fields]
    removed = tuple(name for name in withheld if getattr(offer, name) is not None)

    transformed, notes = transform_offer(offer, rule, context)
    blanks: dict[str, Any] = dict.fromkeys(withheld)
    if "free_hours" in withheld:
        blanks["free_hours_band"] = None
    public = dataclasses.replace(transformed, **blanks)
    return Decision(
        offer.resource,
        public,
        rule,
        removed,
        public_resource=public.resource,
        transformations=tuple(note.english for note in notes),
        notes=tuple(notes),
    )
