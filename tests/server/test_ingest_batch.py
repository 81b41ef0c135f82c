"""``MessageHandler.handle_batch`` without a broker: runs of offers, order, poison and outages."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest

from kooperant.backoff import BackoffPolicy
from kooperant.mqtt import ReceivedMessage
from kooperant.protocol import Offer, offer_topic, status_topic, withdrawal_topic
from server import message_handling
from server.errors import StorageError
from server.message_handling import MessageHandler, StorageRetry
from server.status import RejectReason, ServerStatus
from server.storage import OfferOutcome, OfferToStore, ResourceQuery, Storage
from tests.server.helpers import T0, T1, machine_offer, member_status, with_seq, withdrawal

CLUSTER = "pomorskie-metal"
RETRY = StorageRetry(backoff=BackoffPolicy(minimum=1.0, maximum=8.0, jitter=0.0))


class Sleeps:
    """A sleep that returns at once and records each requested delay."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Committed:
    """The ``committed`` callback: records every reported prefix length."""

    def __init__(self) -> None:
        self.prefixes: list[int] = []

    def __call__(self, count: int) -> None:
        self.prefixes.append(count)


def make_handler(
    storage: Storage, sleeps: Sleeps | None = None
) -> tuple[MessageHandler, ServerStatus]:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    handler = MessageHandler(
        storage,
        status,
        cluster=CLUSTER,
        clock=lambda: T0,
        retry=RETRY,
        sleep=sleeps or Sleeps(),
        rng=random.Random(3),
    )
    return handler, status


def offer_message(offer: Offer, mid: int) -> ReceivedMessage:
    topic = offer_topic(offer.cluster, offer.member, offer.resource)
    return ReceivedMessage(topic=topic, payload=offer.to_payload(), qos=1, retain=False, mid=mid)


def numbered_offers(count: int, member: str = "acme") -> list[Offer]:
    return [
        with_seq(machine_offer(member=member, resource=f"cnc-{number}"), 1, f"{member}-{number}")
        for number in range(count)
    ]


def spy_store_offers(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the message ids of every ``store_offers`` call."""
    calls: list[list[str]] = []
    original = storage.store_offers

    def recording(batch: Sequence[OfferToStore]) -> list[OfferOutcome]:
        calls.append([item.message_id for item in batch])
        return original(batch)

    monkeypatch.setattr(storage, "store_offers", recording)
    return calls


def storage_error() -> StorageError:
    return StorageError(
        "storage_failed", operation="store offer", url="sqlite:///x", detail="disk I/O"
    )


def all_or_nothing(storage: Storage, fails: Callable[[Sequence[OfferToStore]], bool]) -> object:
    """A ``store_offers`` that raises before storing anything while ``fails(batch)`` holds.

    It stands for the storage that writes a batch in one transaction.
    """
    original = storage.store_offers

    def store_offers(batch: Sequence[OfferToStore]) -> list[OfferOutcome]:
        if fails(batch):
            raise storage_error()
        return original(batch)

    return store_offers


def history_counts(storage: Storage, offers: Sequence[Offer]) -> list[int]:
    return [storage.count_history(item.cluster, item.member, item.resource) for item in offers]


# Runs of offers and acknowledgements


async def test_batch_groups_consecutive_offers(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, status = make_handler(storage)
    calls = spy_store_offers(storage, monkeypatch)
    offers = numbered_offers(4)
    status_payload = member_status().to_payload()
    messages = [
        offer_message(offers[0], 1),
        offer_message(offers[1], 2),
        ReceivedMessage(status_topic(CLUSTER, "acme"), status_payload, 1, False, 3),
        offer_message(offers[2], 4),
        offer_message(offers[3], 5),
    ]
    committed = Committed()

    await handler.handle_batch(messages, committed)

    assert calls == [["acme-0", "acme-1"], ["acme-2", "acme-3"]]
    assert committed.prefixes == [2, 3, 5]
    assert status.received_messages == 5
    assert status.accepted_offers == 4
    assert status.accepted_statuses == 1
    assert history_counts(storage, offers) == [1, 1, 1, 1]


async def test_batch_offer_withdrawal_newer_offer_order(storage: Storage) -> None:
    handler, status = make_handler(storage)
    first = with_seq(machine_offer(generated_at=T0, name="first"), 1)
    taken_back = with_seq(withdrawal(withdrawn_at=T1), 2)
    newer = with_seq(machine_offer(generated_at=T1 + timedelta(hours=1), name="newer"), 3)
    messages = [
        offer_message(first, 1),
        ReceivedMessage(
            withdrawal_topic(CLUSTER, "acme", "cnc-5ax-01"), taken_back.to_payload(), 1, False, 2
        ),
        offer_message(newer, 3),
    ]
    committed = Committed()

    await handler.handle_batch(messages, committed)

    current = storage.list_resources(ResourceQuery(), now=T0).items
    assert [item.name for item in current] == ["newer"]
    # The first offer was stored before the withdrawal, so it is in the history.
    assert storage.count_history(CLUSTER, "acme", "cnc-5ax-01") == 2
    assert status.accepted_withdrawals == 1
    assert status.stale_withdrawals == 0
    assert status.accepted_offers == 2
    assert committed.prefixes == [1, 2, 3]


async def test_batch_invalid_offer_keeps_neighbours(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, status = make_handler(storage)
    calls = spy_store_offers(storage, monkeypatch)
    offers = numbered_offers(2)
    bad = ReceivedMessage(offer_topic(CLUSTER, "acme", "bad"), b"{not json", 1, False, 2)
    committed = Committed()

    await handler.handle_batch(
        [offer_message(offers[0], 1), bad, offer_message(offers[1], 3)], committed
    )

    assert calls == [["acme-0"], ["acme-1"]]
    assert committed.prefixes == [1, 2, 3]
    assert status.accepted_offers == 2
    assert status.rejected_by_reason[RejectReason.INVALID_PAYLOAD] == 1
    [rejection] = storage.list_rejected()
    assert rejection.topic == offer_topic(CLUSTER, "acme", "bad")


async def test_batch_redelivery_counts_duplicates(storage: Storage) -> None:
    handler, status = make_handler(storage)
    offers = numbered_offers(3)
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]

    await handler.handle_batch(messages, Committed())
    await handler.handle_batch(messages, Committed())

    assert status.received_messages == 6
    assert status.accepted_offers == 3
    assert status.duplicate_messages == 3
    assert history_counts(storage, offers) == [1, 1, 1]


# Failures


async def test_batch_poison_offer_only_rejected(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    handler, status = make_handler(storage, sleeps)
    offers = numbered_offers(5)
    poison = "acme-2"
    store_offer = storage.store_offer

    def failing_store_offer(offer: Offer, received_at: object, *, message_id: str) -> object:
        if message_id == poison:
            raise storage_error()
        return store_offer(offer, received_at, message_id=message_id)  # type: ignore[arg-type]

    monkeypatch.setattr(
        storage,
        "store_offers",
        all_or_nothing(storage, lambda batch: any(item.message_id == poison for item in batch)),
    )
    monkeypatch.setattr(storage, "store_offer", failing_store_offer)
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]
    committed = Committed()

    await handler.handle_batch(messages, committed)

    assert history_counts(storage, offers) == [1, 1, 0, 1, 1]
    assert status.accepted_offers == 4
    assert status.duplicate_messages == 0
    assert status.rejected_messages == 1
    assert status.rejected_by_reason[RejectReason.STORAGE_FAILED] == 1
    [rejection] = storage.list_rejected()
    assert rejection.topic == offer_topic(CLUSTER, "acme", "cnc-2")
    assert "disk I/O" in rejection.reason
    # Five attempts at the batch, then five at the poison offer alone.
    assert status.storage_retries == 10
    assert committed.prefixes == [5]
    assert "storing them one at a time" in caplog.text


async def test_batch_outage_retries_whole_batch(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    handler, status = make_handler(storage, sleeps)
    offers = numbered_offers(6)
    attempts: list[int] = []

    def down_twice(batch: Sequence[OfferToStore]) -> bool:
        attempts.append(len(batch))
        return len(attempts) <= 2

    monkeypatch.setattr(storage, "store_offers", all_or_nothing(storage, down_twice))
    caplog.set_level(logging.WARNING, logger="server.message_handling")
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]
    committed = Committed()

    await handler.handle_batch(messages, committed)

    assert attempts == [6, 6, 6]
    assert history_counts(storage, offers) == [1] * 6
    assert status.accepted_offers == 6
    assert status.duplicate_messages == 0
    assert status.rejected_messages == 0
    assert status.storage_retries == 2
    assert status.storage_paused is False
    assert sleeps.delays == [1.0, 2.0]
    assert committed.prefixes == [6]
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2
    assert logged[0].startswith("Storage failed, so ingest paused")
    assert logged[1] == "Storage works again, so ingest resumed after 2 failed attempts"


async def test_batch_partial_commit_stores_each_once(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A storage that commits offer by offer fails at the fourth offer, twice.
    handler, status = make_handler(storage)
    offers = numbered_offers(6)
    store_offer = storage.store_offer
    failures = [2]

    def store_one(offer: Offer, received_at: object, *, message_id: str) -> object:
        if message_id == "acme-3" and failures[0] > 0:
            failures[0] -= 1
            raise storage_error()
        return store_offer(offer, received_at, message_id=message_id)  # type: ignore[arg-type]

    def store_offers(batch: Sequence[OfferToStore]) -> list[object]:
        return [
            store_one(item.offer, item.received_at, message_id=item.message_id) for item in batch
        ]

    monkeypatch.setattr(storage, "store_offers", store_offers)
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]

    await handler.handle_batch(messages, Committed())

    assert history_counts(storage, offers) == [1] * 6
    assert status.rejected_messages == 0
    # The three offers committed before the failure come back as duplicates on the retry.
    assert status.accepted_offers + status.duplicate_messages == 6
    assert status.accepted_offers >= 3


async def test_batch_registration_outage_then_stores(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = Sleeps()
    handler, status = make_handler(storage, sleeps)
    offers = numbered_offers(3)
    required = storage.registration_required
    failures = [2]

    def flaky_required(cluster: str) -> bool:
        if failures[0] > 0:
            failures[0] -= 1
            raise storage_error()
        return required(cluster)

    monkeypatch.setattr(storage, "registration_required", flaky_required)
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]
    committed = Committed()

    await handler.handle_batch(messages, committed)

    assert history_counts(storage, offers) == [1, 1, 1]
    assert status.accepted_offers == 3
    assert status.rejected_messages == 0
    assert committed.prefixes[-1] == 3


async def test_batch_unregistered_member_rejected(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, status = make_handler(storage)
    calls = spy_store_offers(storage, monkeypatch)
    storage.register_member(CLUSTER, "acme", T0)
    offers = [*numbered_offers(2), *numbered_offers(1, member="beta")]
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]

    await handler.handle_batch(messages, Committed())

    assert calls == [["acme-0", "acme-1"]]
    assert status.accepted_offers == 2
    assert status.rejected_by_reason[RejectReason.NOT_REGISTERED] == 1


async def test_batch_check_bug_falls_back(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handler, status = make_handler(storage)
    offers = numbered_offers(3)

    def broken(*arguments: object) -> object:
        raise KeyError("a bug in the checks")

    monkeypatch.setattr(message_handling, "check_offers", broken)
    messages = [offer_message(offer, number) for number, offer in enumerate(offers, start=1)]
    committed = Committed()

    await handler.handle_batch(messages, committed)

    assert history_counts(storage, offers) == [1, 1, 1]
    assert status.accepted_offers == 3
    assert committed.prefixes == [1, 2, 3]
    assert "handling them one at a time" in caplog.text
