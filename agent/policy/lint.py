"""Warnings about a valid policy that probably does not do what its owner meant.

``lint_policy`` checks the rules against the resources the agent has (from its adapters or its
config) and returns one ``PolicyWarning`` per finding, sorted by line. A warning carries a message
code and its values, so that ``kooperant agent check`` can show it in Polish or English; its
``reason`` is the English text. Whether an audience member exists in the cluster is not checked,
because the agent does not know the cluster's members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from agent.errors import Problem
from agent.policy.rules import Rule
from kooperant.protocol import ResourceKind

ENGLISH_TEMPLATES: Mapping[str, str] = {
    "no_match": "rule {number} matches no known resource (known: {known}); check its selectors",
    "shadowed": "rule {number} never applies to {resources}, because rule {first} "
    "({first_location}) matches first",
    "shadowed_until": "rule {number} applies to {resources} only after rule {first} "
    "({first_location}) expires at {expires_at}",
    "expired": "rule {number} expired at {expires_at} and is skipped; remove it or change expires",
    "horizon": "horizon_days {days} is beyond the agent's horizon_days {agent_days}, so it "
    "limits nothing; lower it or remove it",
    "band_unlisted": "bands.{quantity} has no effect because {field} is not in fields; "
    "add {field} to fields or remove the band",
    "band_intervals": "free_hours is shown as a band, but free_intervals is shared and its exact "
    "hours can be summed; remove free_intervals or the band",
    "name_unlisted": "name {name!r} never leaves because 'name' is not in fields; add name to "
    "fields or remove the name",
    "no_fields": "rule {number} lists no fields, but its offers still leave with the envelope "
    "(public id, kind, generated_at), which shows that the resources exist; list the fields to "
    "share, or remove the rule to publish nothing",
    "public_id": "resources {resources} would all be published as {public_id!r} and overwrite "
    "each other's offer; give them different public ids",
}


@dataclass(frozen=True, slots=True)
class PolicyWarning(Problem):
    """A ``Problem`` found by lint, with the message code and values for localized output."""

    code: str = ""
    values: Mapping[str, str] = field(default_factory=dict, hash=False)


def lint_policy(
    rules: Sequence[Rule],
    resources: Mapping[str, ResourceKind],
    tags: Mapping[str, frozenset[str]],
    horizon_days: int,
    *,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> list[Problem]:
    """Return the warnings about ``rules`` for the agent's known ``resources``, by line."""
    now = now or datetime.now(UTC)
    zone = zone or ZoneInfo("UTC")
    warnings: list[Problem] = []
    for rule in rules:
        warnings.extend(_rule_warnings(rule, resources, tags, horizon_days, now, zone))
    warnings.extend(_shadow_warnings(rules, resources, tags, zone))
    warnings.extend(_public_id_warnings(rules, resources, tags))
    warnings.sort(key=lambda warning: warning.line or 0)
    return warnings


def _warning(rule: Rule, at_key: str | None, code: str, **values: object) -> PolicyWarning:
    """Return a warning on ``rule``, placed at its key ``at_key`` or at the rule itself."""
    texts = {name: str(value) for name, value in values.items()}
    texts.setdefault("number", str(rule.number))
    line = rule.line if at_key is None else rule.line_of(at_key.split(".")[0])
    where = rule.key if at_key is None else f"{rule.key}.{at_key}"
    reason = ENGLISH_TEMPLATES[code].format(**texts)
    return PolicyWarning(line, where, reason, code, texts)


def _matched(
    rule: Rule, resources: Mapping[str, ResourceKind], tags: Mapping[str, frozenset[str]]
) -> list[str]:
    return [
        resource
        for resource, kind in sorted(resources.items())
        if rule.matches(resource, kind, frozenset(tags.get(resource, ())))
    ]


def _rule_warnings(
    rule: Rule,
    resources: Mapping[str, ResourceKind],
    tags: Mapping[str, frozenset[str]],
    horizon_days: int,
    now: datetime,
    zone: ZoneInfo,
) -> list[PolicyWarning]:
    warnings = []
    if not _matched(rule, resources, tags):
        known = ", ".join(sorted(resources)) or "none"
        warnings.append(_warning(rule, None, "no_match", known=known))

    expires_at = rule.expires_at(zone)
    if expires_at is not None and expires_at <= now:
        warnings.append(_warning(rule, "expires", "expired", expires_at=expires_at.isoformat()))

    if rule.horizon_days is not None and rule.horizon_days > horizon_days:
        days = rule.horizon_days
        warnings.append(
            _warning(rule, "horizon_days", "horizon", days=days, agent_days=horizon_days)
        )

    for key in rule.bands:
        listed_as = "free_hours" if key == "free_hours" else "amounts"
        if listed_as not in rule.fields:
            warnings.append(
                _warning(rule, f"bands.{key}", "band_unlisted", quantity=key, field=listed_as)
            )
    if "free_hours" in rule.bands and "free_intervals" in rule.fields:
        warnings.append(_warning(rule, "bands.free_hours", "band_intervals"))

    if not rule.fields:
        warnings.append(_warning(rule, "fields", "no_fields"))

    if rule.name is not None and "name" not in rule.fields:
        warnings.append(_warning(rule, "name", "name_unlisted", name=rule.name))
    return warnings


def _shadow_warnings(
    rules: Sequence[Rule],
    resources: Mapping[str, ResourceKind],
    tags: Mapping[str, frozenset[str]],
    zone: ZoneInfo,
) -> list[PolicyWarning]:
    # (later rule number, earlier rule number) -> resources both match.
    shadowed: dict[tuple[int, int], list[str]] = {}
    for resource in sorted(resources):
        first: Rule | None = None
        for rule in rules:
            if not rule.matches(resource, resources[resource], frozenset(tags.get(resource, ()))):
                continue
            if first is None:
                first = rule
            else:
                shadowed.setdefault((rule.number, first.number), []).append(resource)

    by_number = {rule.number: rule for rule in rules}
    warnings = []
    for (later, earlier), names in sorted(shadowed.items()):
        first = by_number[earlier]
        values = {
            "resources": ", ".join(names),
            "first": first.number,
            "first_location": first.location,
        }
        expires_at = first.expires_at(zone)
        if expires_at is None:
            warnings.append(_warning(by_number[later], None, "shadowed", **values))
        else:
            until = expires_at.isoformat()
            warnings.append(
                _warning(by_number[later], None, "shadowed_until", expires_at=until, **values)
            )
    return warnings


def _public_id_warnings(
    rules: Sequence[Rule],
    resources: Mapping[str, ResourceKind],
    tags: Mapping[str, frozenset[str]],
) -> list[PolicyWarning]:
    # Public id -> (internal ids, rule of the last one), each resource under its first rule.
    published: dict[str, tuple[list[str], Rule]] = {}
    for resource in sorted(resources):
        for rule in rules:
            if rule.matches(resource, resources[resource], frozenset(tags.get(resource, ()))):
                public = rule.public_id(resource)
                names = published.get(public, ([], rule))[0]
                published[public] = ([*names, resource], rule)
                break

    warnings = []
    for public, (names, rule) in sorted(published.items()):
        if len(names) > 1:
            listed = ", ".join(names)
            warnings.append(_warning(rule, None, "public_id", resources=listed, public_id=public))
    return warnings
