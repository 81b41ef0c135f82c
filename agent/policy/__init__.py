"""The owner's sharing policy: deny by default, first matching rule applies.

``load_policy`` and ``parse_policy`` read the policy file into a ``Policy``. ``Policy.decide``
returns, for one internal offer, a ``Decision``: the public, transformed offer the rule permits,
or why it is withheld. ``PolicyContext`` carries the clock, the working calendar, the resources'
tags and the ``StateHistory`` a decision may need.
"""

from agent.policy.context import PolicyContext
from agent.policy.decide import Decision, Policy, WithheldReason
from agent.policy.history import StateHistory
from agent.policy.loader import load_policy, parse_policy
from agent.policy.notes import Note
from agent.policy.rules import ALL_FIELDS, MAX_DELAY_MINUTES, Rounding, Rule

__all__ = [
    "ALL_FIELDS",
    "MAX_DELAY_MINUTES",
    "Decision",
    "Note",
    "Policy",
    "PolicyContext",
    "Rounding",
    "Rule",
    "StateHistory",
    "WithheldReason",
    "load_policy",
    "parse_policy",
]
