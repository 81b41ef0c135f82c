"""Serialised writes: two ingest workers storing one member's offers, and SQLite's write lock."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from kooperant.protocol import Offer
from server.storage import OfferOutcome, Storage
from server.storage.tables import delivered_messages, resources
from tests.server.helpers import T0, hours, machine_offer, with_seq

MESSAGES = 200
KEY = ("pomorskie-metal", "acme", "cnc-5ax-01")


@pytest.fixture
def second_worker(storage: Storage, database_url: str) -> Iterator[Storage]:
    """Another ``Storage`` on the same database, as a second ingest worker would open it."""
    opened = Storage(database_url)
    yield opened
    opened.close()


def numbered_offers() -> list[Offer]:
    # A higher seq gets an earlier generated_at, so only the sequence number can order them.
    return [
        with_seq(machine_offer(name=f"seq {seq}", generated_at=T0 - hours(seq)), seq)
        for seq in range(1, MESSAGES + 1)
    ]


def current_seq(storage: Storage) -> int | None:
    with storage.engine.connect() as connection:
        seq: int | None = connection.execute(select(resources.c.seq)).scalar_one_or_none()
    return seq


def test_parallel_workers_keep_highest_seq(storage: Storage, second_worker: Storage) -> None:
    offers = numbered_offers()
    start = threading.Barrier(2)
    outcomes: list[OfferOutcome] = []
    errors: list[BaseException] = []
    workers_done = threading.Event()

    def work(worker: Storage, seed: int) -> None:
        order = offers[:]
        random.Random(seed).shuffle(order)
        start.wait()
        try:
            for offer in order:
                outcomes.append(worker.store_offer(offer, T0))
        except BaseException as error:
            errors.append(error)

    observed: list[int] = []

    def watch() -> None:
        while not workers_done.is_set():
            seq = current_seq(storage)
            if seq is not None:
                observed.append(seq)

    threads = [
        threading.Thread(target=work, args=(storage, 1)),
        threading.Thread(target=work, args=(second_worker, 2)),
    ]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    workers_done.set()
    watcher.join(timeout=10)

    assert errors == []
    counts = Counter(outcomes)
    assert counts[OfferOutcome.DUPLICATE] == MESSAGES
    assert counts[OfferOutcome.CURRENT] + counts[OfferOutcome.HISTORY_ONLY] == MESSAGES
    assert current_seq(storage) == MESSAGES
    assert storage.count_history(*KEY) == MESSAGES
    assert observed == sorted(observed), "the current offer went back to a lower seq"
    with storage.engine.connect() as connection:
        delivered = connection.execute(
            select(func.count()).select_from(delivered_messages)
        ).scalar_one()
    assert delivered == MESSAGES


def test_sqlite_keeps_wal_and_immediate_writes(sqlite_storage: Storage, sqlite_url: str) -> None:
    reader = Storage(sqlite_url)
    try:
        with sqlite_storage.engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        with sqlite_storage._transaction("hold the write lock"):
            # A write transaction holds the lock from BEGIN IMMEDIATE on, before any write,
            # while a reader still sees the last committed state thanks to WAL.
            readable = reader.list_members()
            blocked = _try_write(sqlite_url)
    finally:
        reader.close()

    assert mode == "wal"
    assert readable == []
    assert "database is locked" in blocked


def _try_write(url: str) -> str:
    path = url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        return str(error)
    finally:
        connection.close()
    return "no error"
