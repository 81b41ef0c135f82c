"""The topics the broker retains for one member, and the messages that take an offer back.

MQTT has no query for retained messages, so the agent keeps its own account: an offer topic is
live from the queued offer until a queued empty payload clears it, and likewise for withdrawal
topics. The account runs ahead of the broker by the messages still in the outbox, which the
forwarder delivers in order, so a decision never has to wait for the broker. At start the account
is rebuilt from the audit log, which records every acknowledged message, and then the queued
messages on top of it.

Taking an offer back costs two retained QoS 1 messages, in this order. An empty payload on the
offer topic makes the broker drop the retained offer. A ``Withdrawal`` on the withdrawal topic
then reaches also an aggregator that was offline meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import datetime

from agent.audit import AuditLog
from agent.outbox import Outbox, OutgoingMessage, PayloadBuilder, QueuedMessage
from agent.withdrawals import WithdrawalNotice
from kooperant.protocol import (
    Envelope,
    OfferValidationError,
    ResourceKind,
    TopicError,
    Withdrawal,
    offer_topic,
    parse_offer_topic,
    parse_withdrawal,
    parse_withdrawal_topic,
    withdrawal_topic,
)
from kooperant.protocol.topics import TOPIC_ROOT

logger = logging.getLogger(__name__)


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
    def rebuild(
        cls, log: AuditLog | None, outbox: Outbox | None, cluster: str, member: str
    ) -> RetainedTopics:
        """Rebuild the account from the audit log and the queued messages of ``member``.

        Raises ``AuditLogError`` when the file cannot be read.
        """
        retained = cls(cluster, member)
        if log is not None:
            for topic, payload in log.live_offers(cluster, member).items():
                retained.offers[topic] = _offer_kind(payload)
            for topic, payload in log.live_withdrawals(cluster, member).items():
                retained.withdrawals[topic] = _notice(payload)
        if outbox is not None:
            prefix = f"{TOPIC_ROOT}/{cluster}/{member}/"
            for topic, payload in sorted(outbox.latest_payloads().items()):
                if topic.startswith(prefix):
                    retained.apply(topic, payload)
        return retained

    def queued(self, message: QueuedMessage, kind: ResourceKind | None = None) -> None:
        """Update the account after ``message`` was queued for the broker."""
        self.apply(message.topic, message.payload, kind)

    def apply(self, topic: str, payload: bytes, kind: ResourceKind | None = None) -> None:
        """Update the account with a message on ``topic``; an empty ``payload`` clears it.

        Topics other than offer and withdrawal topics, such as answers, are not in the account.
        """
        if _is_offer_topic(topic):
            if payload:
                self.offers[topic] = kind or _offer_kind(payload)
            else:
                self.offers.pop(topic, None)
        elif not _is_withdrawal_topic(topic):
            return
        elif payload:
            self.withdrawals[topic] = _notice(payload)
        else:
            self.withdrawals.pop(topic, None)

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
    ) -> list[OutgoingMessage]:
        """Return the messages that take back the offer of ``resource`` (a public id).

        The offer topic is cleared only when it is live. The withdrawal is sent when the offer
        was live or when a different withdrawal is retained, for example ``not_shared`` while the
        owner now asks to delete the history too. Nothing is sent for a resource never offered.
        """
        offer = offer_topic(self.cluster, self.member, resource)
        withdrawal = withdrawal_topic(self.cluster, self.member, resource)
        messages = []
        if offer in self.offers:
            messages.append(OutgoingMessage(offer, None))
        differs = withdrawal in self.withdrawals and self.withdrawals[withdrawal] != notice
        if messages or differs:
            content = Withdrawal(
                self.cluster,
                self.member,
                resource,
                now,
                notice.reason,
                notice.delete_history,
            )
            messages.append(OutgoingMessage(withdrawal, _withdrawal_builder(content)))
        return messages

    def clear_withdrawal(self, resource: str) -> OutgoingMessage | None:
        """Return the message that clears the retained withdrawal of ``resource``, if any."""
        topic = withdrawal_topic(self.cluster, self.member, resource)
        return OutgoingMessage(topic, None) if topic in self.withdrawals else None


def _withdrawal_builder(content: Withdrawal) -> PayloadBuilder:
    def build(envelope: Envelope) -> bytes:
        return content.with_envelope(envelope).to_payload()

    return build


def _is_offer_topic(topic: str) -> bool:
    try:
        parse_offer_topic(topic)
    except TopicError:
        return False
    return True


def _is_withdrawal_topic(topic: str) -> bool:
    try:
        parse_withdrawal_topic(topic)
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
