"""Storage.store_offers against store_offer one at a time, on SQLite and PostgreSQL (hypothesis).

Hypothesis draws sequences of offers of two members and two resources, with withdrawals in
between. The offers have colliding and missing sequence numbers, equal and older
``generated_at``, repeated message ids and receive times out of order. Hypothesis splits them
into batches at random.
One database stores each offer with ``store_offer``, the other each batch with
``store_offers``; withdrawals go to both with ``apply_withdrawal`` between batches. The
outcomes and every table the offer path writes must be equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kooperant.protocol import Envelope, Withdrawal, WithdrawalReason
from server.storage import OfferOutcome, OfferToStore, Storage, WithdrawalOutcome
from tests.server.helpers import T0, hours
from tests.server.storage_batch_helpers import (
    at,
    extra_postgres_database,
    table_contents,
    variant_offer,
)

MEMBERS = ("acme", "beta")
RESOURCES = ("r1", "r2")
MESSAGE_IDS = ("m0", "m1", "m2", "m3", "m4", "m5", "m6")
_clusters = itertools.count()


@dataclass(frozen=True)
class OfferEvent:
    member: str
    resource: str
    step: int
    variant: int
    seq: int | None
    message_id: str
    received_hours: int


@dataclass(frozen=True)
class WithdrawalEvent:
    member: str
    resource: str
    step: int
    seq: int | None
    message_id: str
    delete_history: bool


offer_events = st.builds(
    OfferEvent,
    member=st.sampled_from(MEMBERS),
    resource=st.sampled_from(RESOURCES),
    step=st.integers(0, 4),
    variant=st.integers(0, 3),
    seq=st.none() | st.integers(1, 6),
    # An empty id makes store_offer compute the payload's key, as for a 1.0 message.
    message_id=st.sampled_from(("", *MESSAGE_IDS)),
    received_hours=st.integers(0, 6),
)
withdrawal_events = st.builds(
    WithdrawalEvent,
    member=st.sampled_from(MEMBERS),
    resource=st.sampled_from(RESOURCES),
    step=st.integers(0, 4),
    seq=st.none() | st.integers(1, 6),
    message_id=st.sampled_from(("w0", "w1", "m1")),
    delete_history=st.booleans(),
)
# Each part is a list of offers, split into batches at the drawn sizes, then maybe a withdrawal.
parts = st.lists(
    st.tuples(
        st.lists(offer_events, max_size=12),
        st.lists(st.integers(1, 6), min_size=1, max_size=6),
        st.none() | withdrawal_events,
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Storage, Storage]]:
    """Two migrated, empty databases of one kind: one for store_offer, one for store_offers."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'single.db'}", f"sqlite:///{tmp_path / 'batch.db'}"]
        yield from _opened(urls)
        return
    first: str = request.getfixturevalue("postgres_url")
    with extra_postgres_database() as second:
        yield from _opened([first, second])


def _opened(urls: list[str]) -> Iterator[tuple[Storage, Storage]]:
    single, batch = Storage(urls[0]), Storage(urls[1])
    try:
        single.migrate()
        batch.migrate()
        yield single, batch
    finally:
        single.close()
        batch.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=parts)
def test_store_offers_equals_one_by_one(
    storage_pair: tuple[Storage, Storage],
    drawn: list[tuple[list[OfferEvent], list[int], WithdrawalEvent | None]],
) -> None:
    single, batch = storage_pair
    cluster = f"c{next(_clusters)}"
    single_outcomes: list[OfferOutcome | WithdrawalOutcome] = []
    batch_outcomes: list[OfferOutcome | WithdrawalOutcome] = []

    for events, sizes, withdrawal_event in drawn:
        items = [_item(cluster, event) for event in events]
        for item in items:
            single_outcomes.append(
                single.store_offer(item.offer, item.received_at, message_id=item.message_id)
            )
        for chunk in _split(items, sizes):
            batch_outcomes.extend(batch.store_offers(chunk))
        if withdrawal_event is not None:
            withdrawal = _withdrawal(cluster, withdrawal_event)
            received_at = at(withdrawal_event.step) + hours(1)
            single_outcomes.append(single.apply_withdrawal(withdrawal, received_at))
            batch_outcomes.append(batch.apply_withdrawal(withdrawal, received_at))

    assert batch_outcomes == single_outcomes
    single_tables = table_contents(single, cluster)
    batch_tables = table_contents(batch, cluster)
    for name, rows in single_tables.items():
        assert batch_tables[name] == rows, name


def _item(cluster: str, event: OfferEvent) -> OfferToStore:
    offer = variant_offer(
        cluster,
        event.member,
        event.resource,
        generated_at=at(event.step),
        variant=event.variant,
        seq=event.seq,
        message_id=event.message_id or "unused",
    )
    return OfferToStore(offer, T0 + hours(event.received_hours), event.message_id)


def _withdrawal(cluster: str, event: WithdrawalEvent) -> Withdrawal:
    envelope = Envelope(event.message_id, event.seq) if event.seq is not None else None
    return Withdrawal(
        cluster=cluster,
        member=event.member,
        resource=event.resource,
        withdrawn_at=at(event.step),
        reason=WithdrawalReason.WITHDRAWN,
        delete_history=event.delete_history,
        envelope=envelope,
    )


def _split(items: list[OfferToStore], sizes: list[int]) -> Iterator[list[OfferToStore]]:
    start = 0
    for size in itertools.cycle(sizes):
        if start >= len(items):
            return
        yield items[start : start + size]
        start += size
