#!/usr/bin/env python3
"""Measure how many offers per second the aggregator's storage writes to PostgreSQL.

The script creates two scratch databases ``kooperant_bench_<random>`` on the PostgreSQL server
of ``--database-url`` and migrates them with ``Storage.migrate()``. It generates ``--offers``
offers of ``--members`` members with ``--resources`` resources each: every resource sends
versions with rising ``generated_at`` and ``seq``, and each round of versions comes in random
member order. Payloads look like the agents' (machines with free intervals, storage and IT
amounts, some audiences and expiry dates), built the way ``bench/search_data.py`` builds them.

The first database gets the offers through ``Storage.store_offers`` in batches of ``--batch``,
the second through ``Storage.store_offer`` one at a time (the first ``--single-offers`` of
them). Each side is timed from its first to its last call on the wall clock. The script also
reads the CPU time of its own process, which runs the Python side, and of the PostgreSQL
backend that serves the storage's connection. It then checks that every offer went to the
history and that each resource has its last version as current. Both databases are dropped at
the end unless ``--keep``.

Run from the repository root: ``.venv/bin/python bench/offer_store.py [--batch 500]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bench.databases import bench_database, psycopg_url
from bench.machine import cpu_model
from bench.options import whole_number
from bench.search_data import CAPABILITIES, CLUSTER, KIND_WEIGHTS, LOCAL_TIME, MACHINE_NAMES
from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, Envelope, MachineState, Offer, ResourceKind
from server.storage import OfferOutcome, OfferToStore, Storage

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL_OFFERS_PER_SECOND = 20_000.0
HORIZON = timedelta(days=14)
# Time between two versions of one resource's offer, as an agent that publishes every minute.
VERSION_INTERVAL = timedelta(minutes=1)
AUDIENCE_SHARE = 0.10
EXPIRING_SHARE = 0.20
BANDED_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class Measurement:
    """One side of the run: offers stored, seconds of wall and CPU time, and the outcomes.

    ``cpu_seconds`` is this process's CPU time and ``server_cpu_seconds`` that of the
    PostgreSQL backend process serving the storage's connection.
    """

    name: str
    offers: int
    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    outcomes: dict[OfferOutcome, int]

    @property
    def rate(self) -> float:
        return self.offers / self.seconds if self.seconds > 0 else 0.0


def main() -> int:
    arguments = parse_arguments()
    server_url = make_url(arguments.database_url)
    print(f"machine: {machine_facts(arguments.database_url)}")
    started = time.perf_counter()
    items = generate_offers(arguments)
    print(
        f"generated {len(items)} offers of {arguments.members} members x {arguments.resources} "
        f"resources in {time.perf_counter() - started:.1f} s"
    )
    single_count = min(arguments.single_offers, len(items))

    with (
        bench_database(server_url, keep=arguments.keep) as batch_url,
        bench_database(server_url, keep=arguments.keep) as single_url,
    ):
        batch_storage = open_storage(batch_url)
        single_storage = open_storage(single_url)
        try:
            batched = measure(
                "batch",
                len(items),
                batch_storage,
                lambda: store_in_batches(batch_storage, items, arguments.batch),
            )
            check_stored(batch_url, items, batched)
            single = measure(
                "single",
                single_count,
                single_storage,
                lambda: store_one_by_one(single_storage, items[:single_count]),
            )
            check_stored(single_url, items[:single_count], single)
        finally:
            batch_storage.close()
            single_storage.close()

    print_report(batched, single, arguments.batch)
    return 0


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure offers/s of Storage.store_offers and Storage.store_offer."
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL server to create the scratch databases on (default %(default)s)",
    )
    parser.add_argument(
        "--offers", type=whole_number, default=100_000, help="offers stored in batches"
    )
    parser.add_argument("--members", type=whole_number, default=1000, help="members")
    parser.add_argument("--resources", type=whole_number, default=20, help="resources per member")
    parser.add_argument(
        "--batch", type=whole_number, default=500, help="offers per store_offers call"
    )
    parser.add_argument(
        "--single-offers",
        type=whole_number,
        default=10_000,
        help="offers stored one at a time, the first of the same sequence (at most --offers)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated offers")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch databases for inspection"
    )
    arguments = parser.parse_args()
    try:
        url = make_url(arguments.database_url)
    except ArgumentError:
        parser.error(f"--database-url: invalid URL {arguments.database_url!r}")
    if not url.drivername.startswith("postgresql"):
        shown = url.render_as_string(hide_password=True)
        parser.error(f"--database-url: expected a postgresql:// URL, got {shown!r}")
    return arguments


def generate_offers(arguments: argparse.Namespace) -> list[OfferToStore]:
    """Return the offers in the order they are stored: rounds of versions, members shuffled."""
    generator = random.Random(arguments.seed)
    members = [f"m{index:05d}" for index in range(1, arguments.members + 1)]
    start = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    shapes = {
        (member, position): _shape(generator, members, member, start)
        for member in members
        for position in range(1, arguments.resources + 1)
    }
    keys = list(shapes)
    items: list[OfferToStore] = []
    version = 0
    while len(items) < arguments.offers:
        generator.shuffle(keys)
        generated_at = start + version * VERSION_INTERVAL
        for member, position in keys:
            if len(items) == arguments.offers:
                break
            seq = version * arguments.resources + position
            message_id = f"{member}-r{position:03d}-{version}"
            offer = Offer(
                cluster=CLUSTER,
                member=member,
                resource=f"r{position:03d}",
                generated_at=generated_at,
                envelope=Envelope(message_id, seq),
                **shapes[(member, position)],
            )
            received_at = generated_at + timedelta(seconds=1)
            items.append(OfferToStore(offer, received_at, message_id))
        version += 1
    return items


def _shape(
    generator: random.Random, members: Sequence[str], member: str, start: datetime
) -> dict[str, Any]:
    kinds = list(KIND_WEIGHTS)
    kind = generator.choices(kinds, weights=[KIND_WEIGHTS[item] for item in kinds])[0]
    tags = CAPABILITIES[kind]
    capabilities = tuple(sorted(generator.sample(tags, generator.randint(1, min(3, len(tags))))))
    fields: dict[str, Any] = {"kind": kind, "capabilities": capabilities}
    if kind == ResourceKind.MACHINE:
        fields.update(_machine_fields(generator, start))
    else:
        fields.update(_amount_fields(generator, kind))
    if generator.random() < AUDIENCE_SHARE:
        others = [
            item for item in generator.sample(members, min(4, len(members))) if item != member
        ]
        fields["audience"] = tuple(sorted(others[: generator.randint(1, 3)])) or None
    if generator.random() < EXPIRING_SHARE:
        fields["expires_at"] = start + timedelta(days=generator.randint(1, 30))
    return fields


def _machine_fields(generator: random.Random, start: datetime) -> dict[str, Any]:
    horizon = Interval(start, start + HORIZON)
    free = _free_intervals(generator, horizon)
    hours = sum(item.hours for item in free)
    fields: dict[str, Any] = {
        "name": f"{generator.choice(MACHINE_NAMES)} #{generator.randint(1, 9)}",
        "state": generator.choice([MachineState.EXECUTING, MachineState.NOT_EXECUTING]),
        "state_since": start - timedelta(minutes=generator.randint(5, 600)),
        "horizon": horizon,
        "free_intervals": tuple(free),
    }
    if generator.random() < BANDED_SHARE:
        low = int(hours // 20) * 20
        fields["free_hours_band"] = Band(low, low + 20)
    else:
        fields["free_hours"] = round(hours, 2)
    return fields


def _free_intervals(generator: random.Random, horizon: Interval) -> list[Interval]:
    """Return the free hours of two shifts (06:00-22:00 local) on working days, around a booking."""
    free: list[Interval] = []
    day = horizon.start.astimezone(LOCAL_TIME).date()
    while True:
        shift_start = datetime.combine(day, day_time(6), LOCAL_TIME).astimezone(UTC)
        if shift_start >= horizon.end:
            return free
        shift_end = datetime.combine(day, day_time(22), LOCAL_TIME).astimezone(UTC)
        day += timedelta(days=1)
        if shift_start.astimezone(LOCAL_TIME).weekday() >= 5 or generator.random() < 0.3:
            continue
        booked_from = shift_start + timedelta(hours=generator.randint(0, 8))
        booked_to = booked_from + timedelta(hours=generator.randint(0, 8))
        for piece_start, piece_end in ((shift_start, booked_from), (booked_to, shift_end)):
            clipped = (max(piece_start, horizon.start), min(piece_end, horizon.end))
            if clipped[1] > clipped[0]:
                free.append(Interval(*clipped))


def _amount_fields(generator: random.Random, kind: ResourceKind) -> dict[str, Any]:
    if kind == ResourceKind.STORAGE:
        places = float(generator.randint(10, 2000))
        return {
            "name": "Magazyn wysokiego składowania",
            "amounts": (Amount("pallet_places", places, "pallet places", label="Hala B"),),
        }
    if kind == ResourceKind.IT_CAPACITY:
        amounts = (
            Amount("cpu_free", float(generator.randint(2, 64)), "cores"),
            Amount("memory_free", round(generator.uniform(4, 512), 1), "GiB"),
            Amount("disk_free", round(generator.uniform(50, 20000), 1), "GiB", label="/"),
        )
        return {"name": "Serwerownia", "amounts": amounts}
    if kind == ResourceKind.IT_TEAM:
        days = float(generator.randint(1, 60))
        return {"name": "Zespół IT", "amounts": (Amount("person_days", days, "person-days"),)}
    stock = float(generator.randint(1, 5000))
    return {"name": "Nadwyżka materiału", "amounts": (Amount("stock", stock, "kg"),)}


def open_storage(url: str) -> Storage:
    storage = Storage(url)
    storage.migrate()
    return storage


def store_in_batches(
    storage: Storage, items: Sequence[OfferToStore], batch: int
) -> list[OfferOutcome]:
    outcomes: list[OfferOutcome] = []
    progress = Progress("batch", len(items))
    for start in range(0, len(items), batch):
        outcomes.extend(storage.store_offers(items[start : start + batch]))
        progress.update(len(outcomes))
    return outcomes


def store_one_by_one(storage: Storage, items: Sequence[OfferToStore]) -> list[OfferOutcome]:
    outcomes = []
    progress = Progress("single", len(items))
    for item in items:
        outcomes.append(
            storage.store_offer(item.offer, item.received_at, message_id=item.message_id)
        )
        progress.update(len(outcomes))
    return outcomes


class Progress:
    """Prints a progress line each time another tenth of ``total`` offers is stored."""

    def __init__(self, name: str, total: int) -> None:
        self._name = name
        self._total = total
        self._printed_tenths = 0

    def update(self, done: int) -> None:
        tenths = done * 10 // self._total
        if tenths > self._printed_tenths:
            self._printed_tenths = tenths
            print(f"  {self._name}: {done}/{self._total} offers", flush=True)


def measure(
    name: str, count: int, storage: Storage, store: Callable[[], list[OfferOutcome]]
) -> Measurement:
    """Run ``store`` and time it; ``storage`` must use one pooled connection throughout."""
    process = psutil.Process()
    backend = psutil.Process(backend_pid(storage))
    cpu_before, server_before = _cpu_seconds(process), _cpu_seconds(backend)
    started = time.perf_counter()
    outcomes = store()
    seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds(process) - cpu_before
    server_cpu_seconds = _cpu_seconds(backend) - server_before
    if len(outcomes) != count:
        raise SystemExit(f"{name}: {len(outcomes)} outcomes for {count} offers")
    counts = {outcome: outcomes.count(outcome) for outcome in OfferOutcome}
    return Measurement(name, count, seconds, cpu_seconds, server_cpu_seconds, counts)


def backend_pid(storage: Storage) -> int:
    """Return the process id of the PostgreSQL backend of the storage's pooled connection.

    The script stores from one thread, so the pool hands out this connection every time.
    """
    with storage.engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def check_stored(database_url: str, items: Sequence[OfferToStore], measured: Measurement) -> None:
    """Exit 1 unless every offer is in the history and each resource's last one is current."""
    last_seq = {}
    for item in items:
        offer = item.offer
        assert offer.envelope is not None
        last_seq[(offer.member, offer.resource)] = offer.envelope.seq
    with psycopg.connect(psycopg_url(database_url)) as connection:
        history = connection.execute("SELECT count(*) FROM offer_history").fetchone()
        rows = connection.execute("SELECT member, resource, seq FROM resources").fetchall()
    stored_history = history[0] if history is not None else 0
    current = {(member, resource): seq for member, resource, seq in rows}
    problems = []
    if stored_history != len(items):
        problems.append(f"{stored_history} history rows for {len(items)} offers")
    if current != last_seq:
        problems.append(
            f"{len(current)} current offers, expected {len(last_seq)} at their last seq"
        )
    if measured.outcomes[OfferOutcome.CURRENT] != len(items):
        problems.append(f"outcomes {measured.outcomes}, expected every offer current")
    if problems:
        raise SystemExit(f"{measured.name}: " + "; ".join(problems))
    print(
        f"{measured.name}: checked {stored_history} history rows and {len(current)} current offers"
    )


def print_report(batched: Measurement, single: Measurement, batch: int) -> None:
    for measured in (batched, single):
        share = measured.cpu_seconds / measured.seconds * 100 if measured.seconds else 0.0
        print(
            f"{measured.name}: {measured.offers} offers in {measured.seconds:.2f} s, "
            f"CPU {measured.cpu_seconds:.2f} s in Python ({share:.0f}% of wall time) and "
            f"{measured.server_cpu_seconds:.2f} s in the PostgreSQL backend, "
            f"{_per_offer(measured.cpu_seconds, measured.offers)} + "
            f"{_per_offer(measured.server_cpu_seconds, measured.offers)} per offer"
        )
    verdict = "met" if batched.rate >= GOAL_OFFERS_PER_SECOND else "NOT MET"
    print(f"batch size: {batch} offers")
    print(f"batch store rate: {batched.rate:.0f} offers/s")
    print(f"single store rate: {single.rate:.0f} offers/s")
    print(f"goal batch store >= {GOAL_OFFERS_PER_SECOND:.0f} offers/s: {verdict}")


def _per_offer(seconds: float, offers: int) -> str:
    return f"{seconds / offers * 1e6:.0f} us"


def machine_facts(database_url: str) -> str:
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    postgres = row[0] if row is not None else "unknown"
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), PostgreSQL {postgres}, "
        f"Mosquitto {_mosquitto_version()} (not used), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _mosquitto_version() -> str:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    try:
        result = subprocess.run(
            [binary, "-h"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    for line in result.stdout.splitlines():
        if "version" in line:
            return line.split("version", 1)[1].split()[0]
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
