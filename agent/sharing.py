"""Sharing decisions of one cycle: the public offers, and the withdrawal reason of the others.

The owner's withdrawals override the policy. A resource the policy withholds gets the reason
``expired`` when only expired rules match it, and ``not_shared`` otherwise. Reasons are keyed by
public resource id, because that id names the topics a withdrawal goes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.policy import Policy, PolicyContext, WithheldReason
from agent.withdrawals import OwnerWithdrawal, WithdrawalNotice, owner_withdrawal
from kooperant.protocol import Offer, WithdrawalReason


@dataclass(frozen=True, slots=True)
class SharingPlan:
    """The outcome of one cycle: the public offers to publish, and why the others are not."""

    offers: tuple[Offer, ...]
    withdrawals: Mapping[str, WithdrawalNotice]
    """The reason to send, by public resource id, for each resource that is not offered."""
    public_ids: Mapping[str, str] = field(default_factory=dict)
    """The public id of each offered resource, by internal id."""


def plan_sharing(
    policy: Policy,
    offers: Iterable[Offer],
    context: PolicyContext,
    withdrawals: Mapping[str, OwnerWithdrawal],
) -> SharingPlan:
    """Decide every internal offer: publish its public form, or the reason to withdraw it."""
    public: list[Offer] = []
    public_ids: dict[str, str] = {}
    notices: dict[str, WithdrawalNotice] = {}
    for offer in offers:
        decision = policy.decide(offer, context)
        public_resource = decision.public_resource or offer.resource
        owner = owner_withdrawal(withdrawals, offer.resource, decision.public_resource)
        if owner is not None:
            notices[public_resource] = _withdrawn(owner)
        elif decision.offer is not None:
            public.append(decision.offer)
            public_ids[offer.resource] = decision.offer.resource
        elif decision.withheld is WithheldReason.EXPIRED:
            notices[public_resource] = WithdrawalNotice(WithdrawalReason.EXPIRED)
        else:
            notices[public_resource] = WithdrawalNotice(WithdrawalReason.NOT_SHARED)

    # A withdrawal recorded under an id no offer has now, for example a resource whose adapter
    # is down, still names a topic the publisher may have to take back.
    for resource, owner in withdrawals.items():
        notices.setdefault(resource, _withdrawn(owner))
    return SharingPlan(tuple(public), notices, public_ids)


def _withdrawn(owner: OwnerWithdrawal) -> WithdrawalNotice:
    return WithdrawalNotice(WithdrawalReason.WITHDRAWN, owner.delete_history)
