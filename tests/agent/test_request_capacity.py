"""The capacity check of accept: other holds, the latest offer, --force and skipped checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.outbox import Outbox, OutgoingMessage
from agent.request_capacity import CapacityConflictError, Conflict, Unchecked
from agent.requests import Acceptance, HoldEnd, RequestState, RequestStore
from kooperant.intervals import Interval
from kooperant.protocol import offer_topic
from kooperant.protocol.request import CapacityRequest, RequestedAmount
from tests.agent.request_samples import (
    MEMBER,
    OTHER_ID,
    RECEIVED,
    REQUEST_ID,
    amount_request,
    record_offer,
    slot_request,
)

CLUSTER = "request-capacity"
LONG = timedelta(days=3650)
DECIDED = RECEIVED + timedelta(hours=2)
THIRD_ID = "7a2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
DAY = datetime(2036, 3, 3, tzinfo=UTC)
SLOT = Interval(DAY.replace(hour=7), DAY.replace(hour=11))
LATER_SLOT = Interval(DAY.replace(hour=9), DAY.replace(hour=13))
SHIFT = {"start": "2036-03-03T06:00:00Z", "end": "2036-03-03T14:00:00Z"}
BEFORE = "2026-03-02T08:00:00Z"
"""An offer reading time before every decision of these tests."""


def kilograms(value: float | None = 400.0, band: bool = False) -> dict[str, Any]:
    amount: dict[str, Any] = {"quantity": "steel", "unit": "kg", "label": "S235"}
    if band:
        amount["band"] = {"min": 200, "max": 500}
    else:
        amount["value"] = value
    return amount


def steel_request(request_id: str, value: float) -> CapacityRequest:
    request = amount_request(CLUSTER, request_id=request_id, value=value)
    amount = RequestedAmount("steel", value, "kg", "S235")
    return dataclasses.replace(request, resource="store", amount=amount, expires_at=RECEIVED + LONG)


def machine_request(request_id: str, slot: Interval) -> CapacityRequest:
    return slot_request(CLUSTER, request_id=request_id, slot=slot, expires_in=LONG)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def store_requests(path: Path, *requests: CapacityRequest) -> None:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        for request in requests:
            store.store(request, RECEIVED, lambda payload: None)


def accept(path: Path, request_id: str, force: bool = False) -> Acceptance:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        return store.accept(request_id, DECIDED, force=force)


def conflict_of(path: Path, request_id: str) -> CapacityConflictError:
    with pytest.raises(CapacityConflictError) as caught:
        accept(path, request_id)
    return caught.value


def states(path: Path) -> dict[str, RequestState]:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        return {item.request_id: item.state for item in store.read()}


def test_accept_rejects_overlapping_slot(database: Path) -> None:
    record_offer(database, CLUSTER, "frezarka-1", True, free_intervals=[SHIFT])
    store_requests(
        database, machine_request(REQUEST_ID, SLOT), machine_request(OTHER_ID, LATER_SLOT)
    )
    accept(database, REQUEST_ID)

    error = conflict_of(database, OTHER_ID)

    assert error.conflict is Conflict.OVERLAP
    assert error.others == (REQUEST_ID,)
    assert states(database)[OTHER_ID] is RequestState.OPEN


def test_accept_allows_slot_after_release(database: Path) -> None:
    record_offer(database, CLUSTER, "frezarka-1", True, free_intervals=[SHIFT])
    store_requests(
        database, machine_request(REQUEST_ID, SLOT), machine_request(OTHER_ID, LATER_SLOT)
    )
    accept(database, REQUEST_ID)
    with Outbox(database) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        store.end_hold(REQUEST_ID, HoldEnd.RELEASED, DECIDED)

    accepted = accept(database, OTHER_ID)

    assert accepted.stored.state is RequestState.ACCEPTED
    assert accepted.unchecked == ()


def test_accept_rejects_slot_outside_free_intervals(database: Path) -> None:
    # The ERP plan booked 09:00-14:00 meanwhile, so the latest offer keeps only 06:00-09:00.
    morning = {"start": "2036-03-03T06:00:00Z", "end": "2036-03-03T09:00:00Z"}
    record_offer(database, CLUSTER, "frezarka-1", True, free_intervals=[morning])
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    error = conflict_of(database, REQUEST_ID)

    assert error.conflict is Conflict.SLOT_NOT_FREE
    assert error.others == ()


def test_accept_takes_slot_across_touching_intervals(database: Path) -> None:
    parts = [
        {"start": "2036-03-03T06:00:00Z", "end": "2036-03-03T09:00:00Z"},
        {"start": "2036-03-03T09:00:00Z", "end": "2036-03-03T12:00:00Z"},
    ]
    record_offer(database, CLUSTER, "frezarka-1", True, free_intervals=parts)
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    accepted = accept(database, REQUEST_ID)

    assert accepted.stored.state is RequestState.ACCEPTED


def test_accept_rejects_offer_without_requests(database: Path) -> None:
    record_offer(database, CLUSTER, "frezarka-1", True, free_intervals=[SHIFT])
    # The owner switched requests off in the policy after the request arrived.
    record_offer(database, CLUSTER, "frezarka-1", False, free_intervals=[SHIFT])
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    assert conflict_of(database, REQUEST_ID).conflict is Conflict.NO_REQUESTS


def test_accept_rejects_offer_taken_back(database: Path) -> None:
    record_offer(database, CLUSTER, "frezarka-1", True, free_intervals=[SHIFT])
    with Outbox(database) as outbox:
        outbox.enqueue([OutgoingMessage(offer_topic(CLUSTER, MEMBER, "frezarka-1"), None)])
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    assert conflict_of(database, REQUEST_ID).conflict is Conflict.NOT_OFFERED


def test_accept_rejects_never_offered_resource(database: Path) -> None:
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    assert conflict_of(database, REQUEST_ID).conflict is Conflict.NOT_OFFERED


def test_accept_rejects_second_amount_above_free(database: Path) -> None:
    record_offer(database, CLUSTER, "store", True, generated_at=BEFORE, amounts=[kilograms()])
    store_requests(database, steel_request(REQUEST_ID, 300), steel_request(OTHER_ID, 300))
    accept(database, REQUEST_ID)

    error = conflict_of(database, OTHER_ID)

    assert error.conflict is Conflict.AMOUNT_ABOVE
    assert error.available == 100
    assert error.others == (REQUEST_ID,)


def test_accept_counts_hold_in_newer_offer_once(database: Path) -> None:
    record_offer(database, CLUSTER, "store", True, generated_at=BEFORE, amounts=[kilograms()])
    store_requests(
        database,
        steel_request(REQUEST_ID, 300),
        steel_request(OTHER_ID, 100),
        steel_request(THIRD_ID, 101),
    )
    accept(database, REQUEST_ID)
    # The agent built a new offer after the accept, with the 300 kg taken out.
    rebuilt = (DECIDED + timedelta(minutes=1)).isoformat()
    record_offer(database, CLUSTER, "store", True, generated_at=rebuilt, amounts=[kilograms(100)])

    error = conflict_of(database, THIRD_ID)
    accepted = accept(database, OTHER_ID)

    assert error.conflict is Conflict.AMOUNT_ABOVE
    assert error.available == 100
    assert error.others == ()
    assert accepted.stored.state is RequestState.ACCEPTED


def test_accept_rejects_amount_above_offer(database: Path) -> None:
    record_offer(database, CLUSTER, "store", True, generated_at=BEFORE, amounts=[kilograms(250)])
    store_requests(database, steel_request(REQUEST_ID, 300))

    error = conflict_of(database, REQUEST_ID)

    assert error.conflict is Conflict.AMOUNT_ABOVE
    assert error.available == 250


@pytest.mark.parametrize(
    ("resource", "fields", "unchecked"),
    [
        ("frezarka-1", {}, Unchecked.FREE_INTERVALS),
        ("store", {"amounts": [kilograms(band=True)]}, Unchecked.AMOUNT),
        ("store", {"amounts": [{**kilograms(), "label": "S355"}]}, Unchecked.AMOUNT),
        ("store", {}, Unchecked.AMOUNT),
    ],
    ids=["no free_intervals", "amount band", "other label", "no amounts"],
)
def test_accept_skips_check_without_field(
    database: Path, resource: str, fields: dict[str, Any], unchecked: Unchecked
) -> None:
    record_offer(database, CLUSTER, resource, True, generated_at=BEFORE, **fields)
    request = (
        machine_request(REQUEST_ID, SLOT)
        if resource == "frezarka-1"
        else steel_request(REQUEST_ID, 300)
    )
    store_requests(database, request)

    accepted = accept(database, REQUEST_ID)

    assert accepted.stored.state is RequestState.ACCEPTED
    assert accepted.unchecked == (unchecked,)


def test_accept_force_skips_check(database: Path) -> None:
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    accepted = accept(database, REQUEST_ID, force=True)

    assert accepted.stored.state is RequestState.ACCEPTED
    assert accepted.unchecked == ()


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"member: {MEMBER}\ncluster: {CLUSTER}\nbroker:\n  url: mqtt://127.0.0.1:1\n"
        "policy: policy.yaml\naudit_log: audit.db\ntimezone: Europe/Warsaw\n",
        encoding="utf-8",
    )
    return path


def invoke(*arguments: str, language: str = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(arguments), env={"KOOPERANT_LANG": language})
    return result.exit_code, result.stdout, result.stderr


FORCE_HINT = (
    "If you know the capacity is free, accept anyway with: kooperant agent accept {id} --force "
    "--config {config}"
)

COMMAND_CONFLICTS = [
    (
        "overlap",
        True,
        {"free_intervals": [SHIFT]},
        f"Cannot accept request {OTHER_ID}: its slot 2036-03-03 10:00 - 14:00 (+01:00) overlaps "
        f"the slot of request {REQUEST_ID}, which is accepted and holds that time of frezarka-1.",
    ),
    (
        "not free",
        False,
        {"free_intervals": [{"start": "2036-03-03T06:00:00Z", "end": "2036-03-03T10:00:00Z"}]},
        f"Cannot accept request {OTHER_ID}: the slot 2036-03-03 10:00 - 14:00 (+01:00) is not "
        "free in the latest offer of frezarka-1; an ERP order or another accepted request takes "
        "at least part of it.",
    ),
    (
        "no requests",
        False,
        {"accepts_requests": False},
        f"Cannot accept request {OTHER_ID}: the latest offer of frezarka-1 does not take "
        "requests (its policy rule sets requests: false).",
    ),
]


@pytest.mark.parametrize(
    ("accept_first", "fields", "expected"),
    [case[1:] for case in COMMAND_CONFLICTS],
    ids=[case[0] for case in COMMAND_CONFLICTS],
)
def test_accept_command_names_conflict(
    config: Path, accept_first: bool, fields: dict[str, Any], expected: str
) -> None:
    database = config.parent / "audit.db"
    offer = {"accepts_requests": True, "free_intervals": [SHIFT], **fields}
    accepts = offer.pop("accepts_requests")
    record_offer(database, CLUSTER, "frezarka-1", accepts, **offer)
    store_requests(
        database, machine_request(REQUEST_ID, SLOT), machine_request(OTHER_ID, LATER_SLOT)
    )
    if accept_first:
        invoke("accept", REQUEST_ID, "--config", str(config))

    status, _, error = invoke("accept", OTHER_ID, "--config", str(config))

    assert status == 2
    assert error.strip() == f"{expected} {FORCE_HINT.format(id=OTHER_ID, config=config)}"
    assert states(database)[OTHER_ID] is RequestState.OPEN


def test_accept_command_names_held_amounts(config: Path) -> None:
    database = config.parent / "audit.db"
    record_offer(database, CLUSTER, "store", True, generated_at=BEFORE, amounts=[kilograms()])
    store_requests(database, steel_request(REQUEST_ID, 300), steel_request(THIRD_ID, 300))
    invoke("accept", REQUEST_ID, "--config", str(config))

    status, _, error = invoke("accept", THIRD_ID.upper(), "--config", str(config), language="pl")

    assert status == 2
    assert error.strip() == (
        f"Nie można przyjąć zapytania {THIRD_ID}: dotyczy 300 kg ilości steel, a ostatnia oferta "
        "zasobu store ma wolne 100 kg po odjęciu zapytań przyjętych od zbudowania oferty "
        f"({REQUEST_ID}). Jeśli wiesz, że te moce są wolne, przyjmij mimo to: kooperant agent "
        f"accept {THIRD_ID} --force --config {config}"
    )


def test_accept_command_force_accepts(config: Path) -> None:
    database = config.parent / "audit.db"
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    status, output, error = invoke("accept", REQUEST_ID, "--force", "--config", str(config))

    assert status == 0, error
    assert output.splitlines()[0] == f"Accepted request {REQUEST_ID}."
    assert states(database)[REQUEST_ID] is RequestState.ACCEPTED


def test_accept_command_notes_unchecked_slot(config: Path) -> None:
    database = config.parent / "audit.db"
    record_offer(database, CLUSTER, "frezarka-1", True)
    store_requests(database, machine_request(REQUEST_ID, SLOT))

    status, _, error = invoke("accept", REQUEST_ID, "--config", str(config))

    assert status == 0
    assert error.strip() == (
        "NOTE: the latest offer of frezarka-1 shows no free_intervals (the policy hides them), "
        "so the slot was checked only against the other accepted requests, not against the free "
        "time."
    )
