"""The topics the broker retains for one member, and the messages that take an offer back.

MQTT has no query for retained messages, so the agent keeps its own account: an offer topic is
live from the acknowledged offer until an acknowledged empty payload clears it, and likewise for
withdrawal topics. At start the account is rebuilt from the audit log, which records every
acknowledged message.

Taking an offer back costs two retained QoS 1 messages, in this order. An empty payload on the
offer topic makes the broker drop the retained offer. A ``Withdrawal`` on the withdrawal topic
then reaches also an aggregator that was offline meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from agent.audit import AuditLog
from agent.withdrawals import WithdrawalNotice
from kooperant.protocol import (
    OfferValidationError,
    ResourceKind,
    TopicError,
    Withdrawal,
    offer_topic,
    parse_offer_topic,
    parse_withdrawal,
    withdrawal_topic,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetainedMessage:
    """One retained message to publish with QoS 1; an empty ``payload`` clears the topic."""

    topic: str
    payload: bytes


class RetainedTopics:
    """The offer and withdrawal topics of one member that the broker still retains."""

    def __init__(self, cluster: str, member: str) -> None:
        self.cluster = cluster
        self.member = member
        self.offers: dict[str, ResourceKind | None] = {}
        """Live offer topics, each with the kind of its offer (``None`` when unreadable)."""
        self.withdrawals: dict[str, WithdrawalNotice | None] = {}
        """Live withdrawal topics, each with its reason (``None`` when unreadable)."""

    @classmethod
    def from_audit_log(cls, log: AuditLog, cluster: str, member: str) -> RetainedTopics:
        """Rebuild the account from the audit log; raises ``AuditLogError`` when unreadable."""
        retained = cls(cluster, member)
        for topic, payload in log.live_offers(cluster, member).items():
            retained.offers[topic] = _offer_kind(payload)
        for topic, payload in log.live_withdrawals(cluster, member).items():
            retained.withdrawals[topic] = _notice(payload)
        return retained

    def acknowledged(self, message: RetainedMessage, kind: ResourceKind | None = None) -> None:
        """Update the account after the broker acknowledged ``message``."""
        if _is_offer_topic(message.topic):
            if message.payload:
                self.offers[message.topic] = kind or _offer_kind(message.payload)
            else:
                self.offers.pop(message.topic, None)
        elif message.payload:
            self.withdrawals[message.topic] = _notice(message.payload)
        else:
            self.withdrawals.pop(message.topic, None)

    def stale_offers(
        self, permitted: Collection[str], kept_kinds: Collection[ResourceKind] = ()
    ) -> list[str]:
        """Return the public resource ids whose retained offer is no longer permitted.

        Offers of ``kept_kinds`` stay, because an adapter withholds a kind while it lacks the
        data to build its offers, which does not make the last offers wrong to show.
        """
        stale = []
        for topic, kind in sorted(self.offers.items()):
            if topic in permitted or (kind is not None and kind in kept_kinds):
                continue
            stale.append(parse_offer_topic(topic)[2])
        return stale

    def withdraw(
        self, resource: str, notice: WithdrawalNotice, now: datetime
    ) -> list[RetainedMessage]:
        """Return the messages that take back the offer of ``resource`` (a public id).

        The offer topic is cleared only when it is live. The withdrawal is sent when the offer
        was live or when a different withdrawal is retained, for example ``not_shared`` while the
        owner now asks to delete the history too. Nothing is sent for a resource never offered.
        """
        offer = offer_topic(self.cluster, self.member, resource)
        withdrawal = withdrawal_topic(self.cluster, self.member, resource)
        messages = []
        if offer in self.offers:
            messages.append(RetainedMessage(offer, b""))
        differs = withdrawal in self.withdrawals and self.withdrawals[withdrawal] != notice
        if messages or differs:
            payload = Withdrawal(
                self.cluster,
                self.member,
                resource,
                now,
                notice.reason,
                notice.delete_history,
            ).to_payload()
            messages.append(RetainedMessage(withdrawal, payload))
        return messages

    def clear_withdrawal(self, resource: str) -> RetainedMessage | None:
        """Return the message that clears the retained withdrawal of ``resource``, if any."""
        topic = withdrawal_topic(self.cluster, self.member, resource)
        return RetainedMessage(topic, b"") if topic in self.withdrawals else None


def _is_offer_topic(topic: str) -> bool:
    try:
        parse_offer_topic(topic)
    except TopicError:
        return False
    return True


def _offer_kind(payload: bytes) -> ResourceKind | None:
    try:
        return ResourceKind(json.loads(payload)["kind"])
    except (ValueError, KeyError, TypeError):
        return None


def _notice(payload: bytes) -> WithdrawalNotice | None:
    try:
        withdrawal = parse_withdrawal(payload)
    except OfferValidationError as error:
        logger.warning("Retained withdrawal in the audit log is invalid: %s", error)
        return None
    return WithdrawalNotice(withdrawal.reason, withdrawal.delete_history)
