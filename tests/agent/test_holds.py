"""Holds of accepted requests: slots out of free intervals, amounts out of amounts, hold ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.base import ScheduledWork, WorkOrder
from agent.holds import Hold, apply_holds, current_holds, scheduled_orders
from agent.outbox import Outbox
from agent.request_watch import RequestReader
from agent.requests import HoldEnd, RequestStore
from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, Offer, ResourceKind
from kooperant.protocol.request import RequestedAmount
from tests.agent.request_samples import (
    MEMBER,
    OTHER_ID,
    RECEIVED,
    REQUEST_ID,
    amount_request,
    slot_request,
)

CLUSTER = "holds-test"
DAY = datetime(2026, 3, 3, tzinfo=UTC)


def at(hour: int) -> datetime:
    return DAY + timedelta(hours=hour)


def span(start: int, end: int) -> Interval:
    return Interval(at(start), at(end))


def machine(resource: str, *free: Interval) -> Offer:
    return Offer(
        cluster=CLUSTER,
        member=MEMBER,
        resource=resource,
        kind=ResourceKind.MACHINE,
        generated_at=RECEIVED,
        horizon=Interval(DAY, DAY + timedelta(days=7)),
        free_hours=sum(interval.hours for interval in free),
        free_intervals=free,
    )


def team(*amounts: Amount) -> Offer:
    return Offer(
        cluster=CLUSTER,
        member=MEMBER,
        resource="it-team",
        kind=ResourceKind.IT_TEAM,
        generated_at=RECEIVED,
        amounts=amounts,
    )


def slot_hold(start: int, end: int, resource: str = "cnc-1") -> Hold:
    return Hold(REQUEST_ID, resource, slot=span(start, end))


def test_slot_inside_free_interval_splits_it() -> None:
    offer = machine("cnc-1", span(6, 14))

    held = apply_holds([offer], [slot_hold(8, 10)], {}, {})

    [result] = held.offers
    assert result.free_intervals == (span(6, 8), span(10, 14))
    assert result.free_hours == 6.0
    assert held.scheduled == ()


def test_slot_overlapping_free_intervals_trims_both() -> None:
    offer = machine("cnc-1", span(6, 10), span(12, 16))

    held = apply_holds([offer], [slot_hold(9, 13)], {}, {})

    [result] = held.offers
    assert result.free_intervals == (span(6, 9), span(13, 16))
    assert result.free_hours == 6.0


def test_slot_outside_free_time_changes_nothing() -> None:
    offer = machine("cnc-1", span(6, 10))

    held = apply_holds([offer], [slot_hold(18, 20)], {}, {})

    assert held.offers == (offer,)


def test_slot_hold_follows_public_id() -> None:
    internal = machine("cnc-1", span(6, 14))
    other = machine("laser-2", span(6, 14))

    held = apply_holds(
        [internal, other], [slot_hold(8, 10, "frezarka-1")], {"cnc-1": {"frezarka-1"}}, {}
    )

    assert held.offers[0].free_intervals == (span(6, 8), span(10, 14))
    assert held.offers[1] == other


def test_slot_covered_by_schedule_ends_hold() -> None:
    offer = machine("cnc-1", span(6, 8), span(10, 14))
    work = ScheduledWork("cnc-1", (WorkOrder("A-1", span(7, 9)), WorkOrder("A-2", span(9, 10))))

    held = apply_holds([offer], [slot_hold(8, 10)], {}, scheduled_orders([work]))

    assert held.scheduled == (REQUEST_ID,)
    assert held.offers == (offer,)


def test_slot_partly_scheduled_stays_held() -> None:
    offer = machine("cnc-1", span(6, 9), span(10, 14))
    work = ScheduledWork("cnc-1", (WorkOrder("A-1", span(9, 10)),))

    held = apply_holds([offer], [slot_hold(8, 12)], {}, scheduled_orders([work]))

    assert held.scheduled == ()
    assert held.offers[0].free_intervals == (span(6, 8), span(12, 14))


def test_amount_hold_subtracts_matching_amount() -> None:
    python = Amount("person_days", 10.0, "days", "python")
    java = Amount("person_days", 4.0, "days", "java")
    banded = Amount("person_days", None, "days", "go", band=Band(5.0, 10.0))
    holds = [
        Hold(REQUEST_ID, "it-team", amount=RequestedAmount("person_days", 3.0, "days", "python")),
        Hold(OTHER_ID, "it-team", amount=RequestedAmount("person_days", 2.0, "days", "python")),
        Hold("x", "it-team", amount=RequestedAmount("person_days", 9.0, "days", "java")),
        Hold("y", "it-team", amount=RequestedAmount("person_days", 1.0, "days", "go")),
    ]

    held = apply_holds([team(python, java, banded)], holds, {}, {})

    amounts = held.offers[0].amounts
    assert amounts is not None
    assert amounts[0].value == 5.0
    assert amounts[1].value == 0.0
    assert amounts[2] == banded


def test_amount_hold_other_unit_ignored() -> None:
    hours = Amount("person_days", 10.0, "hours", "python")
    hold = Hold(REQUEST_ID, "it-team", amount=RequestedAmount("person_days", 3.0, "days", "python"))

    held = apply_holds([team(hours)], [hold], {}, {})

    assert held.offers[0].amounts == (hours,)


def store_accepted(path: Path) -> None:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        store.store(slot_request(CLUSTER), RECEIVED, lambda payload: None)
        store.store(amount_request(CLUSTER), RECEIVED, lambda payload: None)
        store.decide(REQUEST_ID, True, None, RECEIVED)
        store.decide(OTHER_ID, True, None, RECEIVED)


def test_current_holds_end_with_slot(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store_accepted(path)
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        stored = store.read()
    slot = slot_request(CLUSTER).slot
    assert slot is not None

    before = current_holds(stored, slot.end - timedelta(seconds=1))
    after = current_holds(stored, slot.end)

    assert [hold.request_id for hold in before] == [REQUEST_ID, OTHER_ID]
    assert [hold.request_id for hold in after] == [OTHER_ID]


def test_release_ends_amount_hold(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store_accepted(path)
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        reader = RequestReader(store)
        reader.poll(RECEIVED)
        with Outbox(path) as other, RequestStore(other, CLUSTER, MEMBER) as command:
            command.end_hold(OTHER_ID, HoldEnd.RELEASED, RECEIVED)

        changed = reader.poll(RECEIVED)

    assert changed
    assert [hold.request_id for hold in reader.holds(RECEIVED)] == [REQUEST_ID]


def test_reader_records_scheduled_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store_accepted(path)
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        reader = RequestReader(store)
        reader.read()

        reader.end_scheduled((REQUEST_ID,), RECEIVED)

        stored = {item.request_id: item for item in store.read()}
    assert stored[REQUEST_ID].hold_end is HoldEnd.SCHEDULED
    assert [hold.request_id for hold in reader.holds(RECEIVED)] == [OTHER_ID]
