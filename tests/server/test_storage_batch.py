"""Storage.store_offers: named cases of one batch, rollback, log lines and member locks."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from server.errors import StorageError
from server.storage import OfferOutcome, OfferToStore, Storage
from server.storage import offer_batch as offer_batch_module
from server.storage import storage as storage_module
from server.storage.locking import lock_members
from tests.server.helpers import T0, hours, machine_offer, with_seq, withdrawal
from tests.server.storage_batch_helpers import table_contents

CLUSTER = "pomorskie-metal"


def offer_item(seq: int, *, generated_hours: float, received_hours: float = 0) -> OfferToStore:
    offer = with_seq(machine_offer(generated_at=T0 + hours(generated_hours)), seq)
    return OfferToStore(offer, T0 + hours(received_hours), f"m-{seq}")


def test_store_offers_empty_batch(storage: Storage) -> None:
    assert storage.store_offers([]) == []
    assert all(rows == [] for rows in table_contents(storage, CLUSTER).values())


def test_store_offers_duplicate_inside_batch(storage: Storage) -> None:
    first = offer_item(1, generated_hours=0)
    again = replace(first, received_at=T0 + hours(5))

    outcomes = storage.store_offers([first, again])

    assert outcomes == [OfferOutcome.CURRENT, OfferOutcome.DUPLICATE]
    contents = table_contents(storage, CLUSTER)
    assert len(contents["offer_history"]) == 1
    assert len(contents["delivered_messages"]) == 1
    assert contents["members"][0]["last_seen"] == T0


def test_store_offers_older_after_newer(storage: Storage) -> None:
    newer = offer_item(2, generated_hours=2)
    older = offer_item(1, generated_hours=1)

    outcomes = storage.store_offers([newer, older])

    assert outcomes == [OfferOutcome.CURRENT, OfferOutcome.HISTORY_ONLY]
    contents = table_contents(storage, CLUSTER)
    assert [row["seq"] for row in contents["resources"]] == [2]
    assert [row["seq"] for row in contents["offer_history"]] == [2, 1]


def test_store_offers_later_replaces_earlier(storage: Storage) -> None:
    outcomes = storage.store_offers(
        [offer_item(1, generated_hours=1), offer_item(2, generated_hours=2)]
    )

    assert outcomes == [OfferOutcome.CURRENT, OfferOutcome.CURRENT]
    contents = table_contents(storage, CLUSTER)
    assert [row["seq"] for row in contents["resources"]] == [2]
    assert len(contents["resource_capabilities"]) == 2
    assert len(contents["free_intervals"]) == 2


def test_store_offers_all_duplicates(storage: Storage) -> None:
    items = [offer_item(1, generated_hours=1), offer_item(2, generated_hours=2)]
    storage.store_offers(items)
    before = table_contents(storage, CLUSTER)

    later = [replace(item, received_at=T0 + hours(9)) for item in items]
    outcomes = storage.store_offers(later)

    assert outcomes == [OfferOutcome.DUPLICATE, OfferOutcome.DUPLICATE]
    assert table_contents(storage, CLUSTER) == before


def test_store_offers_capacity_tie_keeps_last(storage: Storage) -> None:
    first = offer_item(1, generated_hours=1)
    second = offer_item(2, generated_hours=1)
    second = replace(second, offer=replace(second.offer, free_hours=1.5))

    storage.store_offers([first, second])

    capacity = table_contents(storage, CLUSTER)["capacity_days"]
    assert [row["free_hours"] for row in capacity] == [1.5]


def test_store_offers_first_and_last_seen(storage: Storage) -> None:
    late = offer_item(1, generated_hours=1, received_hours=3)
    early = replace(offer_item(2, generated_hours=2), received_at=T0 + hours(1))

    storage.store_offers([late, early])

    member = table_contents(storage, CLUSTER)["members"][0]
    assert member["first_seen"] == T0 + hours(3)
    assert member["last_seen"] == T0 + hours(3)


def test_store_offers_after_withdrawal(storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    storage.apply_withdrawal(with_seq(withdrawal(withdrawn_at=T0 + hours(2)), 5, "w-5"), T0)
    caplog.set_level(logging.INFO, logger="server.storage")

    outcomes = storage.store_offers(
        [offer_item(4, generated_hours=3), offer_item(6, generated_hours=1)]
    )

    assert outcomes == [OfferOutcome.WITHDRAWN, OfferOutcome.CURRENT]
    withdrawn_lines = [line for line in caplog.messages if line.startswith("Ignored the offer")]
    assert len(withdrawn_lines) == 1
    assert "latest withdrawal" in withdrawn_lines[0]


def test_store_offers_logs_history_only(storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="server.storage")

    storage.store_offers([offer_item(2, generated_hours=2), offer_item(1, generated_hours=1)])

    kept_lines = [line for line in caplog.messages if line.startswith("Kept the current offer")]
    assert len(kept_lines) == 1
    assert "seq 1" in kept_lines[0]


def test_store_offers_error_rolls_back(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing_replace(*_args: object) -> None:
        raise OperationalError("INSERT", None, Exception("disk full"))

    monkeypatch.setattr(offer_batch_module, "replace_currents", failing_replace)
    caplog.set_level(logging.INFO, logger="server.storage")
    items = [offer_item(2, generated_hours=2), offer_item(1, generated_hours=1)]

    with pytest.raises(StorageError, match="disk full"):
        storage.store_offers(items)

    assert all(rows == [] for rows in table_contents(storage, CLUSTER).values())
    assert not [line for line in caplog.messages if line.startswith("Kept the current offer")]
    monkeypatch.undo()
    assert storage.store_offers(items) == [OfferOutcome.CURRENT, OfferOutcome.HISTORY_ONLY]


@pytest.mark.postgres
def test_lock_members_holds_every_lock(postgres_url: str) -> None:
    storage = Storage(postgres_url)
    try:
        with (
            storage.engine.connect() as holder,
            storage.engine.connect() as other,
            holder.begin(),
        ):
            lock_members(holder, [("c", "b"), ("c", "a"), ("c", "b")])
            with other.begin():
                for key in ("c/a", "c/b"):
                    taken = other.execute(
                        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))"),
                        {"key": key},
                    ).scalar_one()
                    assert taken is False, key
    finally:
        storage.close()


def test_store_offers_in_statement_chunks(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_module, "MAX_STATEMENT_BATCH", 2)
    first = offer_item(2, generated_hours=2)
    items = [first, offer_item(3, generated_hours=3), first, offer_item(1, generated_hours=1)]

    outcomes = storage.store_offers(items)

    assert outcomes == [
        OfferOutcome.CURRENT,
        OfferOutcome.CURRENT,
        OfferOutcome.DUPLICATE,
        OfferOutcome.HISTORY_ONLY,
    ]
    contents = table_contents(storage, CLUSTER)
    assert [row["seq"] for row in contents["resources"]] == [3]
    assert [row["seq"] for row in contents["offer_history"]] == [2, 3, 1]
