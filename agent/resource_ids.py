"""The ids a resource is known by: internal (config, policy rules) and public (``publish_as``).

The owner's commands (``withdraw``, ``restore``, ``audit``) accept either kind of id and need every
public id the resource was ever published under, including those of earlier policies, which the
audit log file records.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.audit import AuditLog
from agent.config import AgentConfig
from agent.policy import Policy


@dataclass(frozen=True, slots=True)
class ResolvedResource:
    """A resource id given on the command line, with every id it is or was published under."""

    key: str
    """The id the withdrawal is recorded under: the internal id where known."""
    ids: frozenset[str]


def resolve_resource(config: AgentConfig, log: AuditLog, value: str) -> ResolvedResource | None:
    """Return the resource ``value`` names, or ``None`` when no config, policy or log has it.

    ``value`` is an internal id of the config or of a policy rule, a ``publish_as`` id of the
    policy, or an id of the audit log (for example a public id of an older policy).
    """
    published_as = public_ids(config)
    internal = {public: resource for resource, ids in published_as.items() for public in ids}
    if value in config.resources or value in config.sharing_policy.resources:
        key = value
    elif value in internal:
        key = internal[value]
    elif value in log.known_resources(config.cluster, config.member):
        key = value
    else:
        return None
    earlier = log.public_ids_of(key)
    return ResolvedResource(key, frozenset({key, value, *published_as.get(key, ()), *earlier}))


def known_ids(config: AgentConfig, log: AuditLog) -> set[str]:
    """Return every id ``resolve_resource`` accepts, for the message that lists them."""
    known = set(config.resources) | config.sharing_policy.resources
    known |= log.known_resources(config.cluster, config.member)
    for ids in public_ids(config).values():
        known |= ids
    return known


def public_ids(config: AgentConfig) -> dict[str, set[str]]:
    """Return the ``publish_as`` ids of the current policy, by internal resource id."""
    return policy_public_ids(config.sharing_policy)


def policy_public_ids(policy: Policy) -> dict[str, set[str]]:
    """Return the ``publish_as`` ids of ``policy``, by internal resource id."""
    # Only a rule naming exactly one resource may set publish_as, so these are all the renames.
    renamed: dict[str, set[str]] = {}
    for rule in policy.rules:
        if rule.publish_as is not None and len(rule.resources) == 1:
            (resource,) = rule.resources
            renamed.setdefault(resource, set()).add(rule.publish_as)
    return renamed
