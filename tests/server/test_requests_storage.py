"""Capacity requests in storage: creation checks, reads, withdrawal, answers, expiry and counts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, Offer, parse_offer
from kooperant.protocol.answer import Answer, AnswerState
from kooperant.protocol.envelope import Envelope
from kooperant.protocol.request import CapacityRequest, Contact, RequestedAmount, new_request_id
from server.errors import (
    InvalidRequestError,
    RequestConflictError,
    RequestForbiddenError,
    RequestNotFoundError,
)
from server.storage import AnswerOutcome, RequestState, Storage, Viewer
from tests.server.helpers import T0, hours, machine_offer, storage_offer

CLUSTER = "pomorskie-metal"
BETA = Viewer(cluster=CLUSTER, member="beta")
ACME = Viewer(cluster=CLUSTER, member="acme")
COORDINATOR = Viewer(cluster=CLUSTER, coordinator=True)
NOW = T0 - hours(1)


def offer_1_1_payload() -> bytes:
    """Return acme's machine offer as an agent from before requests sends it."""
    data = json.loads(machine_offer(accepts_requests=True).to_payload())
    data["schema"] = "kooperant.offer/1.1"
    del data["accepts_requests"]
    return json.dumps(data).encode()


def machine_request(**changes: Any) -> CapacityRequest:
    """Return beta's request for two free hours of acme's machine cnc-5ax-01."""
    request = CapacityRequest(
        request_id=new_request_id(),
        cluster=CLUSTER,
        member="acme",
        resource="cnc-5ax-01",
        requester="beta",
        created_at=NOW,
        expires_at=NOW + hours(48),
        contact=Contact("Anna Nowak", email="anna@beta.example"),
        message="Frezowanie 40 detali",
        slot=Interval(T0 + hours(1), T0 + hours(3)),
    )
    return replace(request, **changes)


def amount_request(value: float = 10.0, **changes: Any) -> CapacityRequest:
    """Return beta's request for ``value`` pallet places of acme's storage hall-b."""
    fields: dict[str, Any] = {
        "resource": "hall-b",
        "slot": None,
        "amount": RequestedAmount("pallet_places", value, "pallets"),
    }
    return machine_request(**{**fields, **changes})


def answer(request_id: str, state: AnswerState, seq: int, **changes: Any) -> Answer:
    reason = "Maszyna zajęta" if state == AnswerState.DECLINED else None
    base = Answer(
        request_id=request_id,
        cluster=CLUSTER,
        member="acme",
        resource="cnc-5ax-01",
        state=state,
        decided_at=NOW + hours(2),
        reason=reason,
        envelope=Envelope(f"a-{seq}", seq),
    )
    return replace(base, **changes)


@pytest.fixture
def offers(storage: Storage) -> Storage:
    """Storage with acme's machine and storage hall, both for the whole cluster."""
    storage.store_offer(machine_offer(accepts_requests=True), NOW)
    storage.store_offer(storage_offer(accepts_requests=True), NOW)
    return storage


def test_create_request_stores_sent_request(offers: Storage) -> None:
    request = machine_request()

    created = offers.create_request(request, viewer=BETA, now=NOW)
    stored = offers.get_request(request.request_id, viewer=BETA)

    assert created.state == RequestState.SENT
    assert stored is not None
    assert stored.request == request
    assert stored.state == RequestState.SENT
    assert stored.state_at == NOW
    assert [(entry.state, entry.at) for entry in stored.log] == [(RequestState.SENT, NOW)]


def test_create_request_stores_amount(offers: Storage) -> None:
    request = amount_request(40.0, contact=Contact("Jan", phone="+48 58 123 45 67"))

    offers.create_request(request, viewer=BETA, now=NOW)
    stored = offers.get_request(request.request_id, viewer=ACME)

    assert stored is not None
    assert stored.request == request


def test_list_requests_by_role(offers: Storage) -> None:
    first = machine_request()
    second = amount_request(created_at=NOW + hours(1))
    offers.create_request(first, viewer=BETA, now=NOW)
    offers.create_request(second, viewer=BETA, now=NOW + hours(1))

    sent = offers.list_requests(viewer=BETA, role="sent")
    received = offers.list_requests(viewer=ACME, role="received")
    acme_sent = offers.list_requests(viewer=ACME, role="sent")
    beta_received = offers.list_requests(viewer=BETA, role="received")
    second_page = offers.list_requests(viewer=BETA, role="sent", limit=1, offset=1)

    assert [item.request.request_id for item in sent.items] == [
        second.request_id,
        first.request_id,
    ]
    assert sent.total == 2
    assert [item.request.request_id for item in received.items] == [
        second.request_id,
        first.request_id,
    ]
    assert acme_sent.total == 0
    assert beta_received.total == 0
    assert [item.request.request_id for item in second_page.items] == [first.request_id]
    assert second_page.total == 2


def test_list_requests_coordinator_without_member_is_empty(offers: Storage) -> None:
    offers.create_request(machine_request(), viewer=BETA, now=NOW)

    page = offers.list_requests(viewer=COORDINATOR, role="received")

    assert page.total == 0
    assert page.items == ()


def test_get_request_readers(offers: Storage) -> None:
    request = machine_request()
    offers.create_request(request, viewer=BETA, now=NOW)

    for reader in (BETA, ACME, COORDINATOR):
        assert offers.get_request(request.request_id, viewer=reader) is not None
    for outsider in (
        Viewer(cluster=CLUSTER, member="gamma"),
        Viewer(cluster="other", coordinator=True),
        Viewer(cluster="other", member="beta"),
        Viewer(),
    ):
        assert offers.get_request(request.request_id, viewer=outsider) is None


def test_create_request_hidden_offer_is_not_found(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer(accepts_requests=True), audience=("gamma",)), NOW)
    request = machine_request()

    with pytest.raises(RequestNotFoundError) as hidden:
        storage.create_request(request, viewer=BETA, now=NOW)
    with pytest.raises(RequestNotFoundError) as missing:
        storage.create_request(machine_request(resource="nothing"), viewer=BETA, now=NOW)

    assert hidden.value.message_id == missing.value.message_id == "request_offer_not_found"
    assert "cnc-5ax-01" in str(hidden.value)
    assert storage.get_request(request.request_id, viewer=BETA) is None


@pytest.mark.parametrize(
    "offer",
    [
        pytest.param(machine_offer(accepts_requests=False), id="switched-off"),
        pytest.param(parse_offer(offer_1_1_payload()), id="agent-1.1"),
    ],
)
def test_create_request_closed_offer_is_conflict(storage: Storage, offer: Offer) -> None:
    storage.store_offer(offer, NOW)
    request = machine_request()

    with pytest.raises(RequestConflictError) as raised:
        storage.create_request(request, viewer=BETA, now=NOW)

    assert raised.value.message_id == "request_offer_closed"
    assert str(raised.value).startswith(
        "Member acme does not take requests for resource cnc-5ax-01: "
    )
    assert storage.get_request(request.request_id, viewer=BETA) is None
    assert storage.list_requests(viewer=ACME, role="received").total == 0


def test_create_request_closed_checked_before_slot(storage: Storage) -> None:
    storage.store_offer(machine_offer(accepts_requests=False), NOW)
    busy = Interval(T0 + hours(5), T0 + hours(6))

    with pytest.raises(RequestConflictError) as raised:
        storage.create_request(machine_request(slot=busy), viewer=BETA, now=NOW)

    assert raised.value.message_id == "request_offer_closed"


def test_create_request_audience_member_may_request(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer(accepts_requests=True), audience=("beta",)), NOW)
    request = machine_request()

    created = storage.create_request(request, viewer=BETA, now=NOW)

    assert created.state == RequestState.SENT


def test_create_request_expired_offer_is_not_found(storage: Storage) -> None:
    storage.store_offer(
        replace(machine_offer(accepts_requests=True), expires_at=NOW - hours(1)), NOW - hours(2)
    )

    with pytest.raises(RequestNotFoundError):
        storage.create_request(machine_request(), viewer=BETA, now=NOW)


@pytest.mark.parametrize(
    ("viewer", "message_id"),
    [
        (Viewer(), "request_needs_member"),
        (COORDINATOR, "request_needs_member"),
        (Viewer(cluster=CLUSTER, member="gamma"), "request_requester_mismatch"),
    ],
)
def test_create_request_rejects_caller(offers: Storage, viewer: Viewer, message_id: str) -> None:
    request = machine_request()

    with pytest.raises(RequestForbiddenError) as raised:
        offers.create_request(request, viewer=viewer, now=NOW)

    assert raised.value.message_id == message_id
    assert offers.get_request(request.request_id, viewer=BETA) is None


def test_create_request_coordinator_with_member_may_request(offers: Storage) -> None:
    viewer = Viewer(cluster=CLUSTER, member="beta", coordinator=True)

    created = offers.create_request(machine_request(), viewer=viewer, now=NOW)

    assert created.state == RequestState.SENT


@pytest.mark.parametrize(
    ("slot", "accepted"),
    [
        (Interval(T0, T0 + hours(4)), True),
        (Interval(T0 + hours(24), T0 + hours(25)), True),
        (Interval(T0 + hours(3), T0 + hours(5)), False),
        (Interval(T0 - hours(1), T0 + hours(1)), False),
        (Interval(T0 + hours(3), T0 + hours(25)), False),
        (Interval(T0 + hours(10), T0 + hours(11)), False),
    ],
)
def test_create_request_slot_inside_free_interval(
    offers: Storage, slot: Interval, accepted: bool
) -> None:
    request = machine_request(slot=slot)

    if accepted:
        offers.create_request(request, viewer=BETA, now=NOW)
        assert offers.get_request(request.request_id, viewer=BETA) is not None
        return
    with pytest.raises(InvalidRequestError) as raised:
        offers.create_request(request, viewer=BETA, now=NOW)
    assert raised.value.message_id == "request_slot_not_free"
    assert slot.start.isoformat() in str(raised.value)


def test_create_request_slot_for_storage_rejected(offers: Storage) -> None:
    request = machine_request(resource="hall-b")

    with pytest.raises(InvalidRequestError) as raised:
        offers.create_request(request, viewer=BETA, now=NOW)

    assert raised.value.message_id == "request_slot_not_machine"
    assert "storage" in str(raised.value)


def test_create_request_amount_for_machine_rejected(offers: Storage) -> None:
    request = amount_request(resource="cnc-5ax-01")

    with pytest.raises(InvalidRequestError) as raised:
        offers.create_request(request, viewer=BETA, now=NOW)

    assert raised.value.message_id == "request_amount_for_machine"


@pytest.mark.parametrize(
    ("amount", "message_id", "named"),
    [
        (RequestedAmount("pallet_places", 40.5, "pallets"), "request_amount_above_free", "40.5"),
        (RequestedAmount("disk_free", 1.0, "GiB"), "request_amount_unknown", "disk_free"),
        (
            RequestedAmount("pallet_places", 1.0, "pallets", "cold"),
            "request_amount_unknown",
            "cold",
        ),
        (RequestedAmount("pallet_places", 1.0, "m2"), "request_amount_unit", "m2"),
    ],
)
def test_create_request_amount_rejected(
    offers: Storage, amount: RequestedAmount, message_id: str, named: str
) -> None:
    request = amount_request(amount=amount)

    with pytest.raises(InvalidRequestError) as raised:
        offers.create_request(request, viewer=BETA, now=NOW)

    assert raised.value.message_id == message_id
    assert named in str(raised.value)


def test_create_request_amount_label_and_band(storage: Storage) -> None:
    amounts = (
        Amount("person_days", 5.0, "days", label="python"),
        Amount("person_days", None, "days", label="plc", band=Band(10.0, 20.0)),
    )
    storage.store_offer(replace(storage_offer(accepts_requests=True), amounts=amounts), NOW)

    def request_days(value: float, label: str) -> CapacityRequest:
        return amount_request(amount=RequestedAmount("person_days", value, "days", label))

    storage.create_request(request_days(10.0, "plc"), viewer=BETA, now=NOW)
    storage.create_request(request_days(5.0, "python"), viewer=BETA, now=NOW)
    with pytest.raises(InvalidRequestError) as above_band:
        storage.create_request(request_days(10.5, "plc"), viewer=BETA, now=NOW)
    with pytest.raises(InvalidRequestError) as above_value:
        storage.create_request(request_days(6.0, "python"), viewer=BETA, now=NOW)

    assert above_band.value.message_id == "request_amount_above_free"
    assert above_value.value.message_id == "request_amount_above_free"
    assert storage.list_requests(viewer=BETA, role="sent").total == 2


def created(storage: Storage, **changes: Any) -> str:
    request = machine_request(**changes)
    storage.create_request(request, viewer=BETA, now=NOW)
    return request.request_id


def state_of(storage: Storage, request_id: str) -> RequestState:
    record = storage.get_request(request_id, viewer=BETA)
    assert record is not None
    return record.state


def test_withdraw_request_by_requester(offers: Storage) -> None:
    request_id = created(offers)

    withdrawn = offers.withdraw_request(request_id, viewer=BETA, now=NOW + hours(1))

    assert withdrawn.state == RequestState.WITHDRAWN
    assert withdrawn.state_at == NOW + hours(1)
    assert [entry.state for entry in withdrawn.log] == [RequestState.SENT, RequestState.WITHDRAWN]


def test_withdraw_request_delivered(offers: Storage) -> None:
    request_id = created(offers)
    offers.apply_answer(answer(request_id, AnswerState.DELIVERED, 1), NOW)

    withdrawn = offers.withdraw_request(request_id, viewer=BETA, now=NOW + hours(1))

    assert withdrawn.state == RequestState.WITHDRAWN


def test_withdraw_request_rejections(offers: Storage) -> None:
    request_id = created(offers)

    with pytest.raises(RequestForbiddenError) as by_owner:
        offers.withdraw_request(request_id, viewer=ACME, now=NOW)
    with pytest.raises(RequestForbiddenError):
        offers.withdraw_request(request_id, viewer=COORDINATOR, now=NOW)
    with pytest.raises(RequestNotFoundError) as by_outsider:
        offers.withdraw_request(request_id, viewer=Viewer(cluster=CLUSTER, member="x"), now=NOW)
    with pytest.raises(RequestNotFoundError):
        offers.withdraw_request(new_request_id(), viewer=BETA, now=NOW)

    assert by_owner.value.message_id == "request_withdraw_not_requester"
    assert request_id in str(by_outsider.value)
    assert state_of(offers, request_id) == RequestState.SENT


@pytest.mark.parametrize("state", [AnswerState.ACCEPTED, AnswerState.DECLINED])
def test_withdraw_request_final_is_conflict(offers: Storage, state: AnswerState) -> None:
    request_id = created(offers)
    offers.apply_answer(answer(request_id, state, 1), NOW)

    with pytest.raises(RequestConflictError) as raised:
        offers.withdraw_request(request_id, viewer=BETA, now=NOW + hours(1))

    assert str(state) in str(raised.value)
    assert state_of(offers, request_id) == RequestState(state.value)


def test_withdraw_request_twice_is_conflict(offers: Storage) -> None:
    request_id = created(offers)
    offers.withdraw_request(request_id, viewer=BETA, now=NOW)

    with pytest.raises(RequestConflictError):
        offers.withdraw_request(request_id, viewer=BETA, now=NOW)


def test_apply_answer_transitions(offers: Storage) -> None:
    request_id = created(offers)

    delivered = offers.apply_answer(answer(request_id, AnswerState.DELIVERED, 1), NOW + hours(1))
    declined = offers.apply_answer(answer(request_id, AnswerState.DECLINED, 2), NOW + hours(2))
    record = offers.get_request(request_id, viewer=ACME)

    assert delivered == AnswerOutcome.APPLIED
    assert declined == AnswerOutcome.APPLIED
    assert record is not None
    assert record.state == RequestState.DECLINED
    assert record.reason == "Maszyna zajęta"
    assert record.state_at == NOW + hours(2)
    assert [(entry.state, entry.note) for entry in record.log] == [
        (RequestState.SENT, None),
        (RequestState.DELIVERED, None),
        (RequestState.DECLINED, "Maszyna zajęta"),
    ]


def test_apply_answer_accepted_from_sent(offers: Storage) -> None:
    request_id = created(offers)

    outcome = offers.apply_answer(answer(request_id, AnswerState.ACCEPTED, 5), NOW)

    assert outcome == AnswerOutcome.APPLIED
    assert state_of(offers, request_id) == RequestState.ACCEPTED


def test_apply_answer_ordered_by_seq(offers: Storage) -> None:
    request_id = created(offers)
    offers.apply_answer(answer(request_id, AnswerState.DELIVERED, 10), NOW)

    older = offers.apply_answer(answer(request_id, AnswerState.ACCEPTED, 9), NOW)
    same = offers.apply_answer(answer(request_id, AnswerState.ACCEPTED, 10), NOW)
    repeated = offers.apply_answer(answer(request_id, AnswerState.DELIVERED, 11), NOW)
    newer = offers.apply_answer(answer(request_id, AnswerState.ACCEPTED, 12), NOW)

    assert older == AnswerOutcome.STALE
    assert same == AnswerOutcome.STALE
    assert repeated == AnswerOutcome.UNCHANGED
    assert newer == AnswerOutcome.APPLIED
    assert state_of(offers, request_id) == RequestState.ACCEPTED


def test_apply_answer_ignored_when_final(offers: Storage) -> None:
    request_id = created(offers)
    offers.apply_answer(answer(request_id, AnswerState.DECLINED, 1), NOW)

    late = offers.apply_answer(answer(request_id, AnswerState.ACCEPTED, 2), NOW)
    delivered = offers.apply_answer(answer(request_id, AnswerState.DELIVERED, 3), NOW)

    assert late == AnswerOutcome.FINAL
    assert delivered == AnswerOutcome.FINAL
    assert state_of(offers, request_id) == RequestState.DECLINED


def test_apply_answer_unknown_and_mismatch(offers: Storage) -> None:
    request_id = created(offers)

    unknown = offers.apply_answer(answer(new_request_id(), AnswerState.ACCEPTED, 1), NOW)
    other_owner = offers.apply_answer(
        answer(request_id, AnswerState.ACCEPTED, 1, member="gamma"), NOW
    )
    other_resource = offers.apply_answer(
        answer(request_id, AnswerState.ACCEPTED, 1, resource="hall-b"), NOW
    )

    assert unknown == AnswerOutcome.UNKNOWN_REQUEST
    assert other_owner == AnswerOutcome.MISMATCH
    assert other_resource == AnswerOutcome.MISMATCH
    assert state_of(offers, request_id) == RequestState.SENT


def test_apply_answer_after_withdrawal_is_final(offers: Storage) -> None:
    request_id = created(offers)
    offers.withdraw_request(request_id, viewer=BETA, now=NOW)

    outcome = offers.apply_answer(answer(request_id, AnswerState.ACCEPTED, 1), NOW)

    assert outcome == AnswerOutcome.FINAL
    assert state_of(offers, request_id) == RequestState.WITHDRAWN


def test_expire_requests_marks_open_due(offers: Storage) -> None:
    due_sent = created(offers, expires_at=NOW + hours(1))
    due_delivered = created(offers, expires_at=NOW + hours(1))
    offers.apply_answer(answer(due_delivered, AnswerState.DELIVERED, 1), NOW)
    due_accepted = created(offers, expires_at=NOW + hours(1))
    offers.apply_answer(answer(due_accepted, AnswerState.ACCEPTED, 2), NOW)
    later = created(offers, expires_at=NOW + hours(3))

    expired = offers.expire_requests(NOW + hours(1))
    again = offers.expire_requests(NOW + hours(1))

    assert sorted(expired) == sorted([due_sent, due_delivered])
    assert again == []
    assert state_of(offers, due_sent) == RequestState.EXPIRED
    assert state_of(offers, due_delivered) == RequestState.EXPIRED
    assert state_of(offers, due_accepted) == RequestState.ACCEPTED
    assert state_of(offers, later) == RequestState.SENT
    record = offers.get_request(due_sent, viewer=ACME)
    assert record is not None
    assert record.log[-1].state == RequestState.EXPIRED
    assert record.log[-1].at == NOW + hours(1)


def test_request_counts_per_month(offers: Storage) -> None:
    # 2026-11-30T23:30Z is already December in Warsaw (UTC+1).
    november = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    december = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    first = created(offers, created_at=november, expires_at=november + hours(1))
    created(offers, created_at=november, expires_at=NOW + hours(48))
    third = created(offers, created_at=december, expires_at=NOW + hours(48))
    offers.apply_answer(answer(third, AnswerState.ACCEPTED, 1), NOW)
    offers.expire_requests(NOW)

    counts = offers.request_counts_per_month(viewer=COORDINATOR)
    since = offers.request_counts_per_month(viewer=COORDINATOR, since=december)
    other = offers.request_counts_per_month(viewer=Viewer(cluster="other", coordinator=True))

    assert [(item.month, item.state, item.count) for item in counts] == [
        (date(2026, 11, 1), RequestState.EXPIRED, 1),
        (date(2026, 11, 1), RequestState.SENT, 1),
        (date(2026, 12, 1), RequestState.ACCEPTED, 1),
    ]
    assert [(item.month, item.state) for item in since] == [
        (date(2026, 12, 1), RequestState.ACCEPTED)
    ]
    assert other == []
    assert state_of(offers, first) == RequestState.EXPIRED


@pytest.mark.parametrize("viewer", [BETA, Viewer()])
def test_request_counts_need_coordinator(offers: Storage, viewer: Viewer) -> None:
    with pytest.raises(RequestForbiddenError):
        offers.request_counts_per_month(viewer=viewer)
