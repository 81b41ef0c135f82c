"""Withdrawals, cleared offers and expiry in storage, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from kooperant.intervals import Interval
from server.storage import OfferOutcome, ResourceQuery, Storage, Viewer, WithdrawalOutcome
from tests.server.helpers import T0, hours, machine_offer, withdrawal

KEY = ("pomorskie-metal", "acme", "cnc-5ax-01")


def listed(storage: Storage, now_offset: float = 0) -> list[str]:
    page = storage.list_resources(ResourceQuery(), now=T0 + hours(now_offset))
    return [item.resource for item in page.items]


def test_withdrawal_removes_current_offer(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)

    outcome = storage.apply_withdrawal(withdrawal(withdrawn_at=T0 + hours(1)), T0 + hours(1))

    assert outcome is WithdrawalOutcome.REMOVED
    assert listed(storage) == []
    assert storage.list_resources(ResourceQuery(capabilities=("turning",)), now=T0).total == 0
    assert storage.count_history(*KEY) == 1


def test_withdrawal_removes_audience_rows(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer(), audience=("beta",)), T0)

    storage.apply_withdrawal(withdrawal(), T0 + hours(1))
    storage.store_offer(machine_offer(generated_at=T0 + hours(2)), T0 + hours(2))
    page = storage.list_resources(ResourceQuery(), now=T0)

    assert [item.audience for item in page.items] == [None]


def test_withdrawal_with_delete_history(storage: Storage) -> None:
    storage.store_offer(machine_offer(generated_at=T0 - hours(1)), T0)
    storage.store_offer(machine_offer(), T0)
    storage.store_offer(machine_offer(resource="other"), T0)

    storage.apply_withdrawal(withdrawal(delete_history=True), T0 + hours(1))

    assert storage.count_history(*KEY) == 0
    assert storage.count_history("pomorskie-metal", "acme", "other") == 1
    assert listed(storage) == ["other"]


def test_withdrawal_at_offer_time_removes(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)

    outcome = storage.apply_withdrawal(withdrawal(withdrawn_at=T0), T0)

    assert outcome is WithdrawalOutcome.REMOVED
    assert listed(storage) == []


def test_stale_withdrawal_changes_nothing(storage: Storage) -> None:
    storage.store_offer(machine_offer(generated_at=T0 + hours(2)), T0 + hours(2))

    outcome = storage.apply_withdrawal(
        withdrawal(withdrawn_at=T0 + hours(1), delete_history=True), T0 + hours(3)
    )

    assert outcome is WithdrawalOutcome.STALE
    assert listed(storage) == ["cnc-5ax-01"]
    assert storage.count_history(*KEY) == 1


def test_withdrawal_without_offer_is_recorded(storage: Storage) -> None:
    outcome = storage.apply_withdrawal(withdrawal(withdrawn_at=T0 + hours(1)), T0 + hours(1))
    stored = storage.store_offer(machine_offer(generated_at=T0), T0 + hours(2))

    assert outcome is WithdrawalOutcome.NO_OFFER
    assert stored is OfferOutcome.WITHDRAWN
    assert listed(storage) == []


def test_older_offer_after_withdrawal_stays_out(storage: Storage) -> None:
    storage.store_offer(machine_offer(generated_at=T0), T0, message_id="first")
    storage.apply_withdrawal(withdrawal(withdrawn_at=T0 + hours(1), delete_history=True), T0)

    late_copy = storage.store_offer(machine_offer(generated_at=T0), T0 + hours(2), message_id="x")
    same_time = storage.store_offer(machine_offer(generated_at=T0 + hours(1)), T0 + hours(2))

    assert late_copy is OfferOutcome.WITHDRAWN
    assert same_time is OfferOutcome.WITHDRAWN
    assert listed(storage) == []
    assert storage.count_history(*KEY) == 0


def test_newer_offer_after_withdrawal_returns(storage: Storage) -> None:
    storage.store_offer(machine_offer(generated_at=T0), T0)
    storage.apply_withdrawal(withdrawal(withdrawn_at=T0 + hours(1)), T0 + hours(1))

    outcome = storage.store_offer(machine_offer(generated_at=T0 + hours(2)), T0 + hours(2))

    assert outcome is OfferOutcome.CURRENT
    assert listed(storage) == ["cnc-5ax-01"]


def test_older_withdrawal_keeps_latest_time(storage: Storage) -> None:
    storage.apply_withdrawal(withdrawal(withdrawn_at=T0 + hours(3)), T0 + hours(3))
    storage.apply_withdrawal(withdrawal(withdrawn_at=T0 + hours(1)), T0 + hours(4))

    between = storage.store_offer(machine_offer(generated_at=T0 + hours(2)), T0 + hours(5))

    assert between is OfferOutcome.WITHDRAWN
    assert listed(storage) == []


def test_remove_offer_keeps_history(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0)

    removed = storage.remove_offer(*KEY)
    removed_again = storage.remove_offer(*KEY)

    assert removed is True
    assert removed_again is False
    assert listed(storage) == []
    assert storage.count_history(*KEY) == 1


def test_remove_offer_allows_new_message_again(storage: Storage) -> None:
    storage.store_offer(machine_offer(), T0, message_id="first")
    storage.remove_offer(*KEY)

    redelivered = storage.store_offer(machine_offer(), T0 + hours(1), message_id="first")
    offered_again = storage.store_offer(machine_offer(), T0 + hours(1), message_id="second")

    assert redelivered is OfferOutcome.DUPLICATE
    assert offered_again is OfferOutcome.CURRENT
    assert listed(storage) == ["cnc-5ax-01"]


def test_expired_offer_hidden_everywhere(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer(), expires_at=T0 + hours(2)), T0)
    storage.store_offer(machine_offer(resource="lasting"), T0)
    owner = Viewer("pomorskie-metal", "acme")

    before = listed(storage, now_offset=1.99)
    at_expiry = listed(storage, now_offset=2)
    owner_view = storage.list_resources(ResourceQuery(), viewer=owner, now=T0 + hours(3))
    members = storage.list_members(now=T0 + hours(3))

    assert before == ["cnc-5ax-01", "lasting"]
    assert at_expiry == ["lasting"]
    assert [item.resource for item in owner_view.items] == ["lasting"]
    assert [(item.member, item.resources) for item in members] == [("acme", 1)]


def test_expired_offer_hidden_in_window_and_total(storage: Storage) -> None:
    free = (Interval(T0 + hours(5), T0 + hours(6)),)
    storage.store_offer(replace(machine_offer(free=free), expires_at=T0 + hours(1)), T0)

    page = storage.list_resources(
        ResourceQuery(window_start=T0 + hours(4), window_end=T0 + hours(7)), now=T0 + hours(1)
    )

    assert page.total == 0
    assert page.items == ()


def test_delete_expired_removes_rows(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer(), expires_at=T0 + hours(2)), T0)
    storage.store_offer(replace(machine_offer(resource="later"), expires_at=T0 + hours(9)), T0)

    early = storage.delete_expired(T0 + hours(1))
    deleted = storage.delete_expired(T0 + hours(2))

    assert early == 0
    assert deleted == 1
    assert listed(storage, now_offset=-1) == ["later"]
    assert storage.count_history(*KEY) == 1
