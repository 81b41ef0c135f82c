"""Idempotent, ordered storage on SQLite and PostgreSQL: message ids, sequence numbers, status.

Every test runs on both databases through the ``storage`` fixture.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from kooperant.protocol import OfflineReason, message_key
from server.storage import (
    DELIVERED_RETENTION,
    OfferOutcome,
    ResourceQuery,
    StatusOutcome,
    Storage,
    Viewer,
    WithdrawalOutcome,
)
from tests.server.helpers import T0, hours, machine_offer, member_status, with_seq, withdrawal

KEY = ("pomorskie-metal", "acme", "cnc-5ax-01")


def current_names(storage: Storage) -> list[str | None]:
    page = storage.list_resources(ResourceQuery(), now=T0)
    return [item.name for item in page.items]


def only_member(storage: Storage) -> tuple[object, ...]:
    # The member itself is listed even without a current offer or status.
    [record] = storage.list_members(viewer=Viewer(*KEY[:2]), now=T0)
    return (record.member, record.first_seen, record.last_seen)


# Duplicates


def test_duplicate_offer_changes_nothing(storage: Storage) -> None:
    first = with_seq(machine_offer(name="first"), 1, "msg-1")
    again = with_seq(machine_offer(name="changed", generated_at=T0 + hours(1)), 2, "msg-1")

    stored = storage.store_offer(first, T0, message_id="msg-1")
    repeated = storage.store_offer(again, T0 + hours(1), message_id="msg-1")

    assert stored is OfferOutcome.CURRENT
    assert repeated is OfferOutcome.DUPLICATE
    assert current_names(storage) == ["first"]
    assert storage.count_history(*KEY) == 1
    assert only_member(storage) == ("acme", T0, T0)


def test_duplicate_withdrawal_changes_nothing(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="m-1")
    message = with_seq(withdrawal(withdrawn_at=T0 + hours(1)), 2)
    storage.apply_withdrawal(message, T0 + hours(1), message_id="m-2")
    storage.store_offer(
        with_seq(machine_offer(generated_at=T0 + hours(2)), 3), T0, message_id="m-3"
    )

    repeated = storage.apply_withdrawal(message, T0 + hours(3), message_id="m-2")

    assert repeated is WithdrawalOutcome.DUPLICATE
    assert current_names(storage) == ["DMU 50"]


def test_duplicate_status_changes_nothing(storage: Storage) -> None:
    online = member_status(connected_at=T0)
    storage.store_status(online, T0, message_id="birth")
    offline = member_status(online=False, connected_at=T0)

    repeated = storage.store_status(offline, T0 + hours(1), message_id="birth")
    [record] = storage.list_members(now=T0)

    assert repeated is StatusOutcome.DUPLICATE
    assert record.status == "online"
    assert record.last_seen == T0


def test_legacy_offer_deduplicated_by_payload_hash(storage: Storage) -> None:
    offer = machine_offer()
    key = message_key(None, offer.to_payload())
    other = machine_offer(name="other")

    first = storage.store_offer(offer, T0, message_id=key)
    again = storage.store_offer(offer, T0 + hours(1))
    different = storage.store_offer(other, T0 + hours(1))

    assert key.startswith("sha256:")
    assert first is OfferOutcome.CURRENT
    assert again is OfferOutcome.DUPLICATE
    assert different is OfferOutcome.CURRENT
    assert storage.count_history(*KEY) == 2


def test_same_id_other_member_accepted(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(), 1, "shared"), T0, message_id="shared")

    other = storage.store_offer(
        with_seq(machine_offer(member="beta"), 1, "shared"), T0, message_id="shared"
    )

    assert other is OfferOutcome.CURRENT


# Order by sequence number


def test_lower_seq_never_replaces_higher(storage: Storage) -> None:
    newer = with_seq(machine_offer(name="seq 10", generated_at=T0), 10)
    older = with_seq(machine_offer(name="seq 5", generated_at=T0 + hours(5)), 5)

    storage.store_offer(newer, T0, message_id="m-10")
    outcome = storage.store_offer(older, T0 + hours(1), message_id="m-5")

    assert outcome is OfferOutcome.HISTORY_ONLY
    assert current_names(storage) == ["seq 10"]
    assert storage.count_history(*KEY) == 2


def test_higher_seq_replaces_despite_earlier_time(storage: Storage) -> None:
    storage.store_offer(
        with_seq(machine_offer(name="seq 5", generated_at=T0 + hours(5)), 5), T0, message_id="a"
    )

    outcome = storage.store_offer(
        with_seq(machine_offer(name="seq 6", generated_at=T0), 6), T0, message_id="b"
    )

    assert outcome is OfferOutcome.CURRENT
    assert current_names(storage) == ["seq 6"]


def test_offer_without_seq_ordered_by_time(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(name="enveloped"), 7), T0, message_id="a")

    older = storage.store_offer(machine_offer(name="legacy", generated_at=T0 - hours(1)), T0)
    newer = storage.store_offer(machine_offer(name="legacy", generated_at=T0 + hours(1)), T0)

    assert older is OfferOutcome.HISTORY_ONLY
    assert newer is OfferOutcome.CURRENT
    assert current_names(storage) == ["legacy"]


def test_withdrawal_with_lower_seq_is_stale(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(generated_at=T0), 5), T0, message_id="m-5")
    late_time = with_seq(withdrawal(withdrawn_at=T0 + hours(5), delete_history=True), 3)

    outcome = storage.apply_withdrawal(late_time, T0 + hours(1), message_id="m-3")

    assert outcome is WithdrawalOutcome.STALE
    assert current_names(storage) == ["DMU 50"]
    assert storage.count_history(*KEY) == 1


def test_withdrawal_with_higher_seq_removes(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(generated_at=T0 + hours(5)), 5), T0, message_id="a")
    early_time = with_seq(withdrawal(withdrawn_at=T0), 7)

    outcome = storage.apply_withdrawal(early_time, T0 + hours(1), message_id="b")
    older_offer = storage.store_offer(
        with_seq(machine_offer(generated_at=T0 + hours(9)), 6), T0, message_id="c"
    )
    newer_offer = storage.store_offer(
        with_seq(machine_offer(generated_at=T0 - hours(9)), 8), T0, message_id="d"
    )

    assert outcome is WithdrawalOutcome.REMOVED
    assert older_offer is OfferOutcome.WITHDRAWN
    assert newer_offer is OfferOutcome.CURRENT
    assert current_names(storage) == ["DMU 50"]


def test_withdrawal_older_than_recorded_is_stale(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="a")
    storage.apply_withdrawal(with_seq(withdrawal(), 5), T0, message_id="b")

    outcome = storage.apply_withdrawal(
        with_seq(withdrawal(withdrawn_at=T0 + hours(9), delete_history=True), 4),
        T0,
        message_id="c",
    )

    assert outcome is WithdrawalOutcome.STALE
    assert storage.count_history(*KEY) == 1


# Member status


def test_status_offline_after_online_wins(storage: Storage) -> None:
    birth = storage.store_status(member_status(connected_at=T0), T0, message_id="birth")
    will = storage.store_status(
        member_status(online=False, connected_at=T0), T0 + hours(1), message_id="will"
    )
    [record] = storage.list_members(now=T0)

    assert birth is StatusOutcome.CURRENT
    assert will is StatusOutcome.CURRENT
    assert record.status == "offline"
    assert record.status_since == T0 + hours(1)


def test_status_birth_after_own_will_stale(storage: Storage) -> None:
    storage.store_status(member_status(online=False, connected_at=T0), T0, message_id="will")

    late_birth = storage.store_status(
        member_status(connected_at=T0), T0 + hours(1), message_id="birth"
    )
    [record] = storage.list_members(now=T0)

    assert late_birth is StatusOutcome.STALE
    assert record.status == "offline"


def test_status_will_of_older_connection_stale(storage: Storage) -> None:
    storage.store_status(member_status(connected_at=T0 + hours(2)), T0, message_id="birth-2")

    old_will = storage.store_status(
        member_status(online=False, connected_at=T0 + hours(1)), T0 + hours(3), message_id="w-1"
    )
    [record] = storage.list_members(now=T0)

    assert old_will is StatusOutcome.STALE
    assert record.status == "online"
    assert record.status_since == T0 + hours(2)
    assert record.last_seen == T0 + hours(3)


def test_status_of_newer_connection_wins(storage: Storage) -> None:
    stopped = member_status(online=False, connected_at=T0, reason=OfflineReason.STOPPED)
    storage.store_status(stopped, T0, message_id="stop-1")

    reconnected = storage.store_status(
        member_status(connected_at=T0 + hours(1)), T0 + hours(1), message_id="birth-2"
    )
    [record] = storage.list_members(now=T0)

    assert reconnected is StatusOutcome.CURRENT
    assert record.status == "online"
    assert record.status_since == T0 + hours(1)


def test_status_only_member_is_listed(storage: Storage) -> None:
    storage.store_status(member_status(member="quiet"), T0 + hours(1), message_id="birth")

    [record] = storage.list_members(now=T0)
    same_cluster = storage.list_members(viewer=Viewer("pomorskie-metal", "acme"), now=T0)
    other_cluster = storage.list_members(viewer=Viewer("other", "acme"), now=T0)

    assert (record.member, record.resources, record.status) == ("quiet", 0, "online")
    assert (record.first_seen, record.last_seen) == (T0 + hours(1), T0 + hours(1))
    assert record.registered is False
    assert [item.member for item in same_cluster] == ["acme", "quiet"]
    assert [item.member for item in other_cluster] == ["acme"]


def test_member_without_status_has_none(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)

    [record] = storage.list_members(now=T0)

    assert record.status is None
    assert record.status_since is None


def test_last_seen_follows_every_message_kind(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)
    storage.apply_withdrawal(withdrawal(), T0 + hours(1))
    after_withdrawal = only_member(storage)
    storage.store_status(member_status(), T0 + hours(2))

    assert after_withdrawal == ("acme", T0, T0 + hours(1))
    assert only_member(storage) == ("acme", T0, T0 + hours(2))


# Registration


def test_register_member_once(storage: Storage) -> None:
    before = storage.registration_required("pomorskie-metal")

    first = storage.register_member("pomorskie-metal", "acme", T0)
    second = storage.register_member("pomorskie-metal", "acme", T0 + hours(1))

    assert before is False
    assert first is True
    assert second is False
    assert storage.is_registered("pomorskie-metal", "acme") is True
    assert storage.is_registered("pomorskie-metal", "beta") is False
    assert storage.registration_required("pomorskie-metal") is True
    assert storage.registration_required("other-cluster") is False


def test_members_show_registration(storage: Storage) -> None:
    storage.register_member("pomorskie-metal", "acme", T0)
    storage.store_offer(machine_offer(), T0)
    storage.store_offer(machine_offer(member="beta"), T0)

    members = storage.list_members(now=T0)
    never_seen = storage.list_members(viewer=Viewer("pomorskie-metal", "gamma"), now=T0)

    assert [(item.member, item.registered) for item in members] == [
        ("acme", True),
        ("beta", False),
    ]
    assert ("gamma", False) in [(item.member, item.registered) for item in never_seen]


# Forgetting delivered ids


def test_prune_keeps_ids_of_current_rows(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="replaced")
    storage.store_offer(with_seq(machine_offer(), 2), T0, message_id="current")
    storage.apply_withdrawal(with_seq(withdrawal(resource="gone"), 3), T0, message_id="withdrawn")
    storage.store_status(member_status(), T0, message_id="status")
    storage.store_offer(with_seq(machine_offer(resource="new"), 4), T0 + hours(3), message_id="new")

    forgotten = storage.prune_delivered(T0 + hours(2))
    outcomes = {
        "replaced": storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="replaced"),
        "current": storage.store_offer(with_seq(machine_offer(), 2), T0, message_id="current"),
        "new": storage.store_offer(
            with_seq(machine_offer(resource="new"), 4), T0, message_id="new"
        ),
    }
    withdrawn_again = storage.apply_withdrawal(
        with_seq(withdrawal(resource="gone"), 3), T0, message_id="withdrawn"
    )
    status_again = storage.store_status(member_status(), T0, message_id="status")

    assert forgotten == 1
    assert outcomes == {
        "replaced": OfferOutcome.HISTORY_ONLY,
        "current": OfferOutcome.DUPLICATE,
        "new": OfferOutcome.DUPLICATE,
    }
    assert withdrawn_again is WithdrawalOutcome.DUPLICATE
    assert status_again is StatusOutcome.DUPLICATE


def test_sweep_forgets_ids_after_retention(storage: Storage) -> None:
    storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="old")
    storage.store_offer(with_seq(machine_offer(), 2), T0, message_id="current")

    storage.sweep(T0 + DELIVERED_RETENTION)
    kept = storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="old")
    storage.sweep(T0 + DELIVERED_RETENTION + timedelta(seconds=1))
    forgotten = storage.store_offer(with_seq(machine_offer(), 1), T0, message_id="old")

    assert timedelta(days=30) == DELIVERED_RETENTION
    assert kept is OfferOutcome.DUPLICATE
    assert forgotten is OfferOutcome.HISTORY_ONLY


def test_expired_offer_id_forgotten_after_sweep(storage: Storage) -> None:
    offer = replace(with_seq(machine_offer(), 1), expires_at=T0 + hours(1))
    storage.store_offer(offer, T0, message_id="expiring")

    storage.sweep(T0 + hours(1))
    forgotten = storage.prune_delivered(T0 + hours(2))

    assert forgotten == 1
