"""Many offers stored in one transaction with the outcomes of storing them one at a time.

``Storage.store_offer`` runs about ten statements per offer. ``store_offer_batch`` first reads
what the rules need for the whole batch: delivered message ids, latest withdrawals and current
offers. It decides each offer's outcome in Python in batch order. Then it writes the delivered
ids, members, history, daily capacity and current offers with one or a few statements each.
An offer that became current earlier in the batch counts as the stored one for the later
offers of its resource, and only the last current offer of a resource is written.

The caller holds the write locks of every member of the batch (``locking.lock_members``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from kooperant.protocol import message_key
from server.storage.bulk import insert_rows
from server.storage.capacity import record_capacities
from server.storage.current import (
    CurrentOffer,
    ResourceKey,
    current_stamps,
    latest_withdrawals,
    replace_currents,
)
from server.storage.delivery import MessageRef, Stamp, delivered_among, precedes
from server.storage.members import touch_members
from server.storage.records import OfferOutcome, OfferToStore
from server.storage.tables import delivered_messages, offer_history

HISTORY_COLUMNS = (
    "cluster",
    "member",
    "resource",
    "generated_at",
    "received_at",
    "payload",
    "seq",
    "message_id",
)
DELIVERED_COLUMNS = ("cluster", "member", "message_id", "seq", "kind", "received_at")


@dataclass(frozen=True, slots=True)
class PreparedOffer:
    """One item of a batch with the values every step needs: payload text, key and stamp."""

    item: OfferToStore
    payload: str
    message_id: str
    key: ResourceKey
    stamp: Stamp

    @property
    def message(self) -> MessageRef:
        return (self.key[0], self.key[1], self.message_id)


@dataclass(frozen=True, slots=True)
class LogNote:
    """An INFO log line to write once the batch is committed: format string and arguments."""

    text: str
    args: tuple[object, ...]


@dataclass
class BatchPlan:
    """The writes of one batch, decided before anything is written.

    ``claimed`` are the offers whose message id is new, ``history`` those that go to the history
    (also the current ones), and ``winners`` the last offer per resource that becomes current.
    ``seen`` maps each member with a claimed offer to its first and latest receive time.
    """

    outcomes: list[OfferOutcome] = field(default_factory=list)
    claimed: list[PreparedOffer] = field(default_factory=list)
    history: list[PreparedOffer] = field(default_factory=list)
    winners: dict[ResourceKey, PreparedOffer] = field(default_factory=dict)
    seen: dict[tuple[str, str], tuple[datetime, datetime]] = field(default_factory=dict)
    notes: list[LogNote] = field(default_factory=list)


def prepare_offers(batch: Sequence[OfferToStore]) -> list[PreparedOffer]:
    """Serialise each offer of ``batch`` once and compute missing message ids as ``store_offer``.

    Raises ``ValueError`` from ``Offer.to_payload`` for an offer with a NaN or infinite number.
    """
    prepared = []
    for item in batch:
        offer = item.offer
        payload_bytes = offer.to_payload()
        envelope = offer.envelope
        prepared.append(
            PreparedOffer(
                item=item,
                payload=payload_bytes.decode("utf-8"),
                message_id=item.message_id or message_key(envelope, payload_bytes),
                key=(offer.cluster, offer.member, offer.resource),
                stamp=Stamp(envelope.seq if envelope is not None else None, offer.generated_at),
            )
        )
    return prepared


def plan_batch(
    prepared: Sequence[PreparedOffer],
    delivered: set[MessageRef],
    withdrawn: dict[ResourceKey, Stamp],
    current: dict[ResourceKey, Stamp],
) -> BatchPlan:
    """Decide the outcome of each offer in order, as ``store_offer`` called on each would.

    ``delivered``, ``withdrawn`` and ``current`` are the stored message ids, latest withdrawals
    and current offers of the batch's members and resources. ``current`` is not changed.
    """
    plan = BatchPlan()
    delivered = set(delivered)
    current = dict(current)
    for entry in prepared:
        outcome = _decide(entry, plan, delivered, withdrawn, current)
        plan.outcomes.append(outcome)
    return plan


def _decide(
    entry: PreparedOffer,
    plan: BatchPlan,
    delivered: set[MessageRef],
    withdrawn: dict[ResourceKey, Stamp],
    current: dict[ResourceKey, Stamp],
) -> OfferOutcome:
    if entry.message in delivered:
        return OfferOutcome.DUPLICATE
    delivered.add(entry.message)
    plan.claimed.append(entry)
    _note_seen(plan, entry)

    offer = entry.item.offer
    withdrawal = withdrawn.get(entry.key)
    if withdrawal is not None and precedes(entry.stamp, withdrawal, on_equal_time=True):
        plan.notes.append(
            LogNote(
                "Ignored the offer of %s/%s/%s generated at %s: the latest withdrawal of the "
                "resource (made at %s) is newer",
                (*entry.key, offer.generated_at.isoformat(), withdrawal.time.isoformat()),
            )
        )
        return OfferOutcome.WITHDRAWN

    plan.history.append(entry)
    stored = current.get(entry.key)
    if stored is not None and precedes(entry.stamp, stored, on_equal_time=False):
        plan.notes.append(
            LogNote(
                "Kept the current offer of %s/%s/%s: the received one (generated at %s, "
                "seq %s) is older than the stored one (generated at %s, seq %s)",
                (
                    *entry.key,
                    offer.generated_at.isoformat(),
                    entry.stamp.seq,
                    stored.time.isoformat(),
                    stored.seq,
                ),
            )
        )
        return OfferOutcome.HISTORY_ONLY

    current[entry.key] = entry.stamp
    plan.winners[entry.key] = entry
    return OfferOutcome.CURRENT


def _note_seen(plan: BatchPlan, entry: PreparedOffer) -> None:
    member = (entry.key[0], entry.key[1])
    received_at = entry.item.received_at
    known = plan.seen.get(member)
    if known is None:
        plan.seen[member] = (received_at, received_at)
    elif received_at > known[1]:
        plan.seen[member] = (known[0], received_at)


def store_offer_batch(connection: Connection, prepared: Sequence[PreparedOffer]) -> BatchPlan:
    """Store ``prepared`` in the caller's transaction and return the plan that was written.

    The caller writes the plan's notes to the log after the commit.
    """
    keys = {entry.key for entry in prepared}
    delivered = delivered_among(connection, {entry.message for entry in prepared})
    withdrawn = latest_withdrawals(connection, keys)
    current = current_stamps(connection, keys)
    plan = plan_batch(prepared, delivered, withdrawn, current)

    insert_rows(
        connection,
        delivered_messages,
        DELIVERED_COLUMNS,
        [
            (*entry.message, entry.stamp.seq, "offer", entry.item.received_at)
            for entry in plan.claimed
        ],
    )
    touch_members(connection, plan.seen)
    insert_rows(
        connection,
        offer_history,
        HISTORY_COLUMNS,
        [
            (
                *entry.key,
                entry.item.offer.generated_at,
                entry.item.received_at,
                entry.payload,
                entry.stamp.seq,
                entry.message_id,
            )
            for entry in plan.history
        ],
    )
    record_capacities(
        connection,
        [
            (entry.key, entry.item.offer.generated_at, entry.item.offer.free_hours)
            for entry in plan.history
        ],
    )
    replace_currents(
        connection,
        [
            CurrentOffer(entry.item.offer, entry.item.received_at, entry.payload, entry.message_id)
            for entry in plan.winners.values()
        ],
    )
    return plan
