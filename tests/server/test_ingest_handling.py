"""``Ingest.handle_message`` without a broker: checks, duplicates, status, registration, retries."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable

import pytest

from kooperant.backoff import BackoffPolicy
from kooperant.mqtt.filters import topic_matches
from kooperant.protocol import (
    MAX_PAYLOAD_BYTES,
    OfferValidationError,
    offer_topic,
    status_topic,
    withdrawal_topic,
)
from server.errors import StorageError
from server.ingest import Ingest, IngestSettings
from server.message_handling import StorageRetry
from server.mqtt_url import BrokerAddress
from server.registration_cache import RegistrationCache
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage
from tests.server.helpers import T0, hours, machine_offer, member_status, with_seq, withdrawal

CLUSTER = "pomorskie-metal"
OFFER_TOPIC = offer_topic(CLUSTER, "acme", "cnc-5ax-01")
FAST = StorageRetry(backoff=BackoffPolicy(minimum=1.0, maximum=8.0, jitter=0.0))


class Sleeps:
    """A sleep that returns at once and records each requested delay."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_ingest(
    storage: Storage, sleeps: Sleeps | None = None, cluster: str | None = CLUSTER
) -> tuple[Ingest, ServerStatus]:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883")
    ingest = Ingest(
        storage,
        status,
        IngestSettings(broker=BrokerAddress("127.0.0.1", 1883), cluster=cluster),
        clock=lambda: T0,
        rng=random.Random(3),
        storage_retry=FAST,
        sleep=sleeps or Sleeps(),
    )
    return ingest, status


def stored_names(storage: Storage) -> list[str | None]:
    return [item.name for item in storage.list_resources(ResourceQuery(), now=T0).items]


def reasons(storage: Storage) -> list[str]:
    return [item.reason for item in storage.list_rejected()]


def fail_times(count: int, operation: Callable[..., object]) -> Callable[..., object]:
    """Return ``operation`` that first raises ``StorageError`` ``count`` times."""
    failures = iter(range(count))

    def flaky(*arguments: object, **keywords: object) -> object:
        if next(failures, None) is not None:
            raise StorageError(
                "storage_failed", operation="store offer", url="sqlite:///x", detail="disk I/O"
            )
        return operation(*arguments, **keywords)

    return flaky


# Checks before storing


async def test_payload_over_limit_rejected(sqlite_storage: Storage) -> None:
    ingest, status = make_ingest(sqlite_storage)
    payload = b" " * (MAX_PAYLOAD_BYTES + 1)

    await ingest.handle_message(OFFER_TOPIC, payload)

    assert status.rejected_messages == 1
    assert reasons(sqlite_storage) == [
        f"payload of {MAX_PAYLOAD_BYTES + 1} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes"
    ]


async def test_unknown_major_version_rejected(sqlite_storage: Storage) -> None:
    ingest, status = make_ingest(sqlite_storage)
    data = machine_offer().to_json()
    data["schema"] = "kooperant.offer/2.0"

    await ingest.handle_message(OFFER_TOPIC, json.dumps(data).encode())

    assert status.rejected_messages == 1
    [reason] = reasons(sqlite_storage)
    assert "unsupported schema 'kooperant.offer/2.0'" in reason
    assert "major version 1" in reason


async def test_newer_minor_version_accepted(sqlite_storage: Storage) -> None:
    ingest, status = make_ingest(sqlite_storage)
    data = with_seq(machine_offer(), 1).to_json()
    data["schema"] = "kooperant.offer/1.7"
    data["carbon_footprint"] = {"kg": 12}

    await ingest.handle_message(OFFER_TOPIC, json.dumps(data).encode())

    assert status.accepted_offers == 1
    assert status.rejected_messages == 0
    assert stored_names(sqlite_storage) == ["DMU 50"]


async def test_status_topic_mismatch_rejected(sqlite_storage: Storage) -> None:
    ingest, status = make_ingest(sqlite_storage)

    await ingest.handle_message(
        status_topic(CLUSTER, "beta"), member_status(member="acme").to_payload()
    )

    assert status.rejected_messages == 1
    assert reasons(sqlite_storage) == [
        f"payload is for cluster/member '{CLUSTER}/acme' but the topic is for '{CLUSTER}/beta'"
    ]


async def test_other_cluster_status_dropped(sqlite_storage: Storage) -> None:
    ingest, status = make_ingest(sqlite_storage)

    await ingest.handle_message(
        status_topic("theirs", "acme"), member_status(cluster="theirs").to_payload()
    )

    assert status.dropped_messages == 1
    assert sqlite_storage.list_members() == []


async def test_empty_status_payload_ignored(sqlite_storage: Storage) -> None:
    ingest, status = make_ingest(sqlite_storage)

    await ingest.handle_message(status_topic(CLUSTER, "acme"), b"")

    assert status.rejected_messages == 0
    assert status.accepted_statuses == 0
    assert sqlite_storage.list_members() == []


# Duplicates and status


async def test_duplicate_messages_counted(storage: Storage) -> None:
    ingest, status = make_ingest(storage)
    enveloped = with_seq(machine_offer(), 1).to_payload()
    legacy = machine_offer(resource="legacy").to_payload()
    withdrawn = with_seq(withdrawal(resource="gone"), 2).to_payload()

    for _ in range(2):
        await ingest.handle_message(OFFER_TOPIC, enveloped)
        await ingest.handle_message(offer_topic(CLUSTER, "acme", "legacy"), legacy)
        await ingest.handle_message(withdrawal_topic(CLUSTER, "acme", "gone"), withdrawn)

    assert status.accepted_offers == 2
    assert status.accepted_withdrawals == 1
    assert status.duplicate_messages == 3
    assert storage.count_history(CLUSTER, "acme", "cnc-5ax-01") == 1
    assert storage.count_history(CLUSTER, "acme", "legacy") == 1


async def test_status_birth_and_will(storage: Storage) -> None:
    ingest, status = make_ingest(storage)
    topic = status_topic(CLUSTER, "acme")
    birth = member_status(connected_at=T0 + hours(1)).to_payload()
    old_will = member_status(online=False, connected_at=T0).to_payload()
    will = member_status(online=False, connected_at=T0 + hours(1)).to_payload()

    await ingest.handle_message(topic, birth)
    await ingest.handle_message(topic, old_will)
    after_old_will = storage.list_members(now=T0)[0].status
    await ingest.handle_message(topic, will)
    await ingest.handle_message(topic, will)

    assert after_old_will == "online"
    assert storage.list_members(now=T0)[0].status == "offline"
    assert status.accepted_statuses == 3
    assert status.stale_statuses == 1
    assert status.duplicate_messages == 1


# Registration


async def test_unregistered_member_rejected(storage: Storage) -> None:
    storage.register_member(CLUSTER, "acme", T0)
    ingest, status = make_ingest(storage)
    beta_topic = offer_topic(CLUSTER, "beta", "cnc-5ax-01")

    await ingest.handle_message(OFFER_TOPIC, machine_offer().to_payload())
    await ingest.handle_message(beta_topic, machine_offer(member="beta").to_payload())
    await ingest.handle_message(
        status_topic(CLUSTER, "beta"), member_status(member="beta").to_payload()
    )
    await ingest.handle_message(beta_topic, b"")

    expected = (
        f"member 'beta' is not registered in cluster '{CLUSTER}'; "
        "the coordinator registers members with kooperant server add-member"
    )
    assert reasons(storage) == [expected] * 3
    assert status.accepted_offers == 1
    assert status.rejected_messages == 3
    assert [item.member for item in storage.list_members(now=T0)] == ["acme"]


async def test_cluster_without_registrations_open(sqlite_storage: Storage) -> None:
    sqlite_storage.register_member("other-cluster", "acme", T0)
    ingest, status = make_ingest(sqlite_storage, cluster=None)

    await ingest.handle_message(OFFER_TOPIC, machine_offer().to_payload())

    assert status.accepted_offers == 1


def test_registration_cache_keeps_results_for_ttl(sqlite_storage: Storage) -> None:
    now = [100.0]
    cache = RegistrationCache(sqlite_storage, ttl_seconds=5.0, monotonic=lambda: now[0])

    open_before = cache.rejection_reason(CLUSTER, "beta")
    sqlite_storage.register_member(CLUSTER, "acme", T0)
    open_within_ttl = cache.rejection_reason(CLUSTER, "beta")
    now[0] += 5.0
    closed_after_ttl = cache.rejection_reason(CLUSTER, "beta")
    sqlite_storage.register_member(CLUSTER, "beta", T0)
    registered_at_once = cache.rejection_reason(CLUSTER, "beta")

    assert open_before is None
    assert open_within_ttl is None
    assert closed_after_ttl is not None
    assert "member 'beta' is not registered" in closed_after_ttl
    assert registered_at_once is None


# Retries while the storage fails


async def test_storage_failure_pauses_then_stores(
    sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    ingest, status = make_ingest(sqlite_storage, sleeps)
    monkeypatch.setattr(sqlite_storage, "store_offer", fail_times(3, sqlite_storage.store_offer))
    caplog.set_level(logging.WARNING, logger="server.message_handling")

    await ingest.handle_message(OFFER_TOPIC, machine_offer().to_payload())

    assert stored_names(sqlite_storage) == ["DMU 50"]
    assert sleeps.delays == [1.0, 2.0, 4.0]
    assert status.storage_retries == 3
    assert status.accepted_offers == 1
    assert status.storage_paused is False
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("Storage failed, so ingest paused")
    assert "disk I/O" in messages[0]
    assert messages[1] == "Storage works again, so ingest resumed after 3 failed attempts"


async def test_database_down_retries_past_poison_limit(
    sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = Sleeps()
    ingest, status = make_ingest(sqlite_storage, sleeps)
    monkeypatch.setattr(sqlite_storage, "store_offer", fail_times(8, sqlite_storage.store_offer))
    health_checks = fail_times(99, lambda: None)
    monkeypatch.setattr(sqlite_storage, "check_health", health_checks)

    await ingest.handle_message(OFFER_TOPIC, machine_offer().to_payload())

    assert stored_names(sqlite_storage) == ["DMU 50"]
    assert status.storage_retries == 8
    assert status.rejected_messages == 0
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]


async def test_poison_message_rejected_after_five(
    sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = Sleeps()
    ingest, status = make_ingest(sqlite_storage, sleeps)
    store_offer = sqlite_storage.store_offer
    monkeypatch.setattr(sqlite_storage, "store_offer", fail_times(5, store_offer))

    await ingest.handle_message(OFFER_TOPIC, machine_offer().to_payload())
    await ingest.handle_message(
        offer_topic(CLUSTER, "acme", "next"), machine_offer(resource="next").to_payload()
    )

    assert reasons(sqlite_storage) == [
        "Database operation 'store offer' on sqlite:///x failed: disk I/O."
    ]
    assert status.storage_retries == 5
    assert len(sleeps.delays) == 4
    assert status.rejected_messages == 1
    assert [item.resource for item in sqlite_storage.list_resources(ResourceQuery()).items] == [
        "next"
    ]


async def test_unexpected_error_rejects_message(
    sqlite_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest, status = make_ingest(sqlite_storage)

    def broken(*arguments: object, **keywords: object) -> object:
        raise OfferValidationError("a bug in the storage code")

    monkeypatch.setattr(sqlite_storage, "store_offer", broken)

    await ingest.handle_message(OFFER_TOPIC, machine_offer().to_payload())

    assert status.rejected_messages == 1
    [reason] = reasons(sqlite_storage)
    assert reason.startswith("internal error: OfferValidationError('a bug in the storage code')")


@pytest.mark.parametrize(
    ("topic", "topic_filter", "expected"),
    [
        ("kooperant/v1/c/m/status", "kooperant/v1/+/+/status", True),
        ("kooperant/v1/c/m/status/x", "kooperant/v1/+/+/status", False),
        ("kooperant/v1/c/m", "kooperant/v1/+/+/status", False),
        ("kooperant/v1/c/m/offers/r", "kooperant/v1/c/#", True),
        ("kooperant/v1/c/+/offers/r", "kooperant/v1/c/+/offers/+", False),
        ("", "kooperant/v1/+/+/status", False),
        ("kooperant/v1/d/m/status", "kooperant/v1/c/+/status", False),
    ],
)
def test_topic_matches_filter(topic: str, topic_filter: str, expected: bool) -> None:
    assert topic_matches(topic, topic_filter) is expected
