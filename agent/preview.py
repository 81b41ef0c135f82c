"""What the agent would publish now, computed without touching the broker.

``preview_offers`` starts the config's adapters, collects once they have data, builds the offers,
applies ``Policy.decide`` to each one and stops the adapters. Each permitted entry carries the
payload bytes ``Publisher`` would send, except the envelope (``message_id`` and ``seq``) that the
outbox adds when it queues the offer. Every entry carries the policy's decision: the rule,
its transformations, or why the offer is withheld (no rule, or only expired rules). A resource
the owner withdrew with ``kooperant agent withdraw`` is withheld whatever the policy decides, as in
the running agent. The withdrawals are read from the audit log file when it exists. The
``Agent`` built here creates a ``Publisher``, which connects only in ``Agent.run``, so nothing here
opens a connection to the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from adapters.exports.progress import ReadProgressCallback
from agent.config import AgentConfig
from agent.errors import AuditLogError
from agent.policy import Decision
from agent.runner import Agent
from agent.withdrawals import OwnerWithdrawal, WithdrawalTable, owner_withdrawal
from kooperant.protocol import ResourceKind, offer_topic

logger = logging.getLogger(__name__)

DEFAULT_WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class PreviewEntry:
    """One resource: where its offer would go and what it would contain, or why it is withheld."""

    resource: str
    kind: ResourceKind
    decision: Decision
    topic: str | None
    """The MQTT topic of a permitted offer; ``None`` when the offer is withheld."""
    payload: bytes | None
    """The MQTT payload of a permitted offer without its envelope; ``None`` when withheld."""
    withdrawal: OwnerWithdrawal | None = None
    """The owner's withdrawal that withholds the resource whatever the policy decides."""


@dataclass(frozen=True, slots=True)
class Preview:
    """Everything the agent would publish now, and everything it would hold back."""

    entries: tuple[PreviewEntry, ...]
    withheld_kinds: dict[ResourceKind, str]
    """Kinds whose offers are all held back, each with the adapter's reason."""
    ready: bool
    """Whether every adapter had data before the wait ended."""


async def preview_offers(
    config: AgentConfig,
    *,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    clock: Callable[[], datetime] | None = None,
    read_progress: ReadProgressCallback | None = None,
) -> Preview:
    """Start the adapters, collect once they have data or ``wait_seconds`` pass, then stop them.

    ``read_progress`` receives the progress of export reads, as in ``Agent``.
    """
    agent = Agent(config, clock=clock, read_progress=read_progress)
    await agent.start_adapters()
    try:
        snapshot = await agent.collect_when_ready(wait_seconds)
    finally:
        await agent.stop_adapters()

    entries = []
    context = agent.policy_context(snapshot)
    withdrawals = read_owner_withdrawals(config)
    for offer in agent.policy_offers(snapshot, context):
        decision = agent.policy.decide(offer, context)
        withdrawal = owner_withdrawal(withdrawals, offer.resource, decision.public_resource)
        permitted = decision.offer
        topic = None
        payload = None
        if permitted is not None and withdrawal is None:
            topic = offer_topic(permitted.cluster, permitted.member, permitted.resource)
            payload = permitted.to_payload()
        entries.append(
            PreviewEntry(offer.resource, offer.kind, decision, topic, payload, withdrawal)
        )
    # Without adapters the config's declared resources are all there is, so nothing is missing.
    ready = snapshot.ready or not config.adapters
    return Preview(tuple(entries), dict(snapshot.withheld_kinds), ready)


def read_owner_withdrawals(config: AgentConfig) -> dict[str, OwnerWithdrawal]:
    """Return the owner's withdrawals from the audit log file, or none when it does not exist.

    An unreadable file is logged and read as no withdrawals, because the preview must still show
    what the policy decides. The running agent reports the same file at its start.
    """
    path = config.audit_log_path
    if not path.is_file():
        return {}
    try:
        with WithdrawalTable(path) as table:
            return table.read()
    except AuditLogError as error:
        logger.warning("Cannot read the owner's withdrawals; showing the policy alone: %s", error)
        return {}
