#!/usr/bin/env python3
"""Compare the throughput of one and two ingest workers on one MQTT shared subscription.

For each worker count of ``--workers`` (1 and 2 by default) the script starts its own Mosquitto
on a free loopback port (unlimited queues) and a scratch PostgreSQL database migrated with
``kooperant server migrate``. Then:

1. It starts that many ``kooperant server ingest --shared-group GROUP --client-id ID``
   processes and publishes a few warm-up offers until each worker has stored one, so the broker
   keeps a persistent session with the shared subscription for every worker. Then it stops them.
2. Publisher processes publish ``--backlog`` offers at QoS 1 as fast as they can; the broker
   queues them in the offline sessions, split between the workers.
3. It starts the workers at the same moment and reads their stored counters from ``/metrics``
   every 0.25 s until the backlog is stored or ``--drain-limit`` passes. The drain rate counts
   from the first poll that finds a stored offer, so the workers' start-up is left out.

Draining a queued backlog measures the workers' capacity directly: they never wait for
publishers, and both worker counts see the same start. At the end every published message id
is compared with ``offer_history.message_id``. The last lines give both rates and the ratio.
Run from the repository root: ``.venv/bin/python bench/scale_out.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_load import BatchResult, LoadShape, Publishers, expected_message_ids
from bench.ingest_processes import (
    CpuMeter,
    IngestWorker,
    backend_pids,
    check_database_url,
    check_inflight,
    database_counts,
    launch_worker,
    machine_facts,
    migrated_database,
    own_broker,
    rejected_messages,
    stop_workers,
    stored_message_ids,
    stored_offers,
    wait_until_connected,
)
from tests.support.mosquitto import OwnMosquitto

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POLL_SECONDS = 0.25
WARM_UP_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class DrainResult:
    """One drain: the rate over the drain, per-worker counts and the loss check."""

    workers: int
    rate: float
    rate_with_start: float
    stored: int
    backlog: int
    per_worker: list[int]
    missing: int
    rejected: int
    drained: bool


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    run_tag = uuid.uuid4().hex[:8]
    results: list[DrainResult] = []
    with tempfile.TemporaryDirectory(prefix="kooperant-bench-scale-") as folder:
        for count in options.workers:
            # A broker of its own per worker count: the stopped workers of a previous count
            # keep persistent sessions that would queue a copy of every later offer.
            with (
                own_broker(options.inflight) as broker,
                migrated_database(options.database_url, keep=options.keep) as database_url,
            ):
                if not results:
                    for line in machine_facts(database_url):
                        print(line)
                    print(
                        f"load: backlog {options.backlog} offers, {options.members} members x "
                        f"{options.resources} resources, QoS 1, shared subscription"
                    )
                shape = LoadShape(
                    options.members, options.resources, broker.port, run_tag, options.inflight
                )
                publishers = Publishers(shape, options.publishers)
                try:
                    results.append(
                        drain(options, count, shape, publishers, broker, database_url, Path(folder))
                    )
                finally:
                    publishers.close()

    print_summary(results)
    return 1 if lost_offers(results) else 0


def drain(
    options: argparse.Namespace,
    count: int,
    shape: LoadShape,
    publishers: Publishers,
    broker: OwnMosquitto,
    database_url: str,
    folder: Path,
) -> DrainResult:
    """Queue the backlog for ``count`` stopped workers, then time their drain of it."""
    group = f"bench{shape.run_tag}w{count}"
    client_ids = [f"bench-scale-{shape.run_tag}-{count}-{index}" for index in range(count)]
    published = warm_up(shape, publishers, broker, database_url, folder, group, client_ids)
    warm_up_count = sum(result.published for result in published)

    backlog = publishers.run(options.backlog, None, options.drain_limit)
    published += backlog
    queued = sum(result.published for result in backlog)
    print(f"{count} worker(s): queued {queued} offers")

    workers = [
        launch_worker(database_url, broker.url, client_id, folder, group)
        for client_id in client_ids
    ]
    launched = time.monotonic()
    try:
        for worker in workers:
            wait_until_connected(worker)
        meter = CpuMeter(
            {
                "ingest": [worker.pid for worker in workers],
                "mosquitto": [broker.process.pid] if broker.process else [],
                "postgresql": backend_pids(database_url),
            }
        )
        meter.start()
        first, first_count, end, stored = poll_drain(workers, queued, options.drain_limit)
        meter.stop()
        per_worker = [stored_offers([worker]) for worker in workers]
        rejected = rejected_messages(workers)
    finally:
        stop_workers(workers)

    if first is None:
        rate = 0.0
    elif stored > first_count:
        rate = (stored - first_count) / max(end - first, 1e-9)
    else:
        # The first poll that found an offer found the whole backlog stored, so the rate counts
        # from the launch, start-up included.
        rate = stored / max(end - launched, 1e-9)
    missing = len(
        set(expected_message_ids(shape.run_tag, published)) - stored_message_ids(database_url)
    )
    counts = database_counts(database_url)
    print(
        f"{count} worker(s): stored {stored} of {queued} in {end - launched:.1f} s from launch, "
        f"{rate:.0f} offers/s after the first store; per worker {per_worker}"
    )
    print(
        f"{count} worker(s): offer_history rows {counts.history_rows} "
        f"({warm_up_count} warm-up), missing {missing}, rejected {counts.rejected}"
    )
    for line in meter.lines():
        print(f"{count} worker(s) {line}")
    return DrainResult(
        workers=count,
        rate=rate,
        rate_with_start=stored / max(end - launched, 1e-9),
        stored=stored,
        backlog=queued,
        per_worker=per_worker,
        missing=missing,
        rejected=max(rejected, counts.rejected),
        drained=stored >= queued,
    )


def warm_up(
    shape: LoadShape,
    publishers: Publishers,
    broker: OwnMosquitto,
    database_url: str,
    folder: Path,
    group: str,
    client_ids: Sequence[str],
) -> list[BatchResult]:
    """Start the workers until each stored an offer, so each has a session; stop them."""
    workers: list[IngestWorker] = []
    published: list[BatchResult] = []
    try:
        workers = [
            launch_worker(database_url, broker.url, client_id, folder, group)
            for client_id in client_ids
        ]
        for worker in workers:
            wait_until_connected(worker)
        for _ in range(WARM_UP_ROUNDS):
            published += publishers.run(len(workers) * 2, None, 30.0)
            expected = sum(result.published for result in published)
            deadline = time.monotonic() + 60.0
            while stored_offers(workers) < expected and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
            if all(stored_offers([worker]) > 0 for worker in workers):
                return published
        raise RuntimeError(
            f"not every worker of {group} received a warm-up offer after {WARM_UP_ROUNDS} rounds"
        )
    finally:
        stop_workers(workers)


def poll_drain(
    workers: Sequence[IngestWorker], backlog: int, limit: float
) -> tuple[float | None, int, float, int]:
    """Poll until ``backlog`` offers are stored or ``limit`` seconds passed.

    Returns the time and count of the first poll with a stored offer, the time of the last poll
    and the count stored by then.
    """
    deadline = time.monotonic() + limit
    first: float | None = None
    first_count = 0
    stored = 0
    while True:
        now = time.monotonic()
        stored = stored_offers(workers)
        if first is None and stored > 0:
            first, first_count = now, stored
        if stored >= backlog or now > deadline:
            return first, first_count, now, stored
        time.sleep(POLL_SECONDS)


def print_summary(results: Sequence[DrainResult]) -> None:
    for result in results:
        if not result.drained:
            print(
                f"{result.workers} worker(s): stored only {result.stored} of {result.backlog} "
                "within --drain-limit; the rate is that of the unfinished drain"
            )
    for result in results:
        if result.drained:
            missing = f"{result.missing} missing"
        else:
            # The offers not stored when the workers stopped are still queued in the broker.
            missing = f"{result.missing} not stored (drain unfinished)"
        print(f"loss with {result.workers} worker(s): {missing}, {result.rejected} rejected")
    for result in results:
        print(f"{result.workers} worker(s): {result.rate:.0f} offers/s")
    if len(results) >= 2 and results[0].rate > 0:
        print(f"scale-out ratio: {results[-1].rate / results[0].rate:.2f}")
    else:
        print("scale-out ratio: n/a")


def lost_offers(results: Sequence[DrainResult]) -> bool:
    """Return whether a finished drain missed an offer or any drain rejected one."""
    return any((result.drained and result.missing) or result.rejected for result in results)


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL server on which to create the scratch databases",
    )
    parser.add_argument(
        "--backlog", type=int, default=100_000, help="offers queued before each drain"
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="comma-separated worker counts to compare; the ratio is the last over the first",
    )
    parser.add_argument(
        "--drain-limit",
        type=float,
        default=120.0,
        help="maximum drain time, in seconds; an unfinished drain reports its rate so far",
    )
    parser.add_argument("--members", type=int, default=1000, help="simulated members (agents)")
    parser.add_argument("--resources", type=int, default=20, help="resources per member")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument(
        "--inflight",
        type=int,
        default=1000,
        help="QoS 1 messages in flight per MQTT client (broker and publishers), at most 65535",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    options = parser.parse_args(argv)
    check_database_url(parser, options.database_url)
    check_inflight(parser, options.inflight)
    options.workers = _worker_counts(parser, options.workers)
    for name in ("backlog", "drain_limit", "members", "resources", "publishers", "inflight"):
        value = getattr(options, name)
        if value <= 0:
            parser.error(f"--{name.replace('_', '-')} {value:g} must be positive")
    if options.publishers > options.members:
        parser.error(
            f"--publishers {options.publishers} exceeds --members {options.members}: "
            "each publisher needs a member"
        )
    return options


def _worker_counts(parser: argparse.ArgumentParser, text: str) -> list[int]:
    try:
        counts = [int(item) for item in text.split(",")]
    except ValueError:
        parser.error(f"--workers {text!r} is not a comma-separated list of integers")
    if not counts or any(count <= 0 for count in counts):
        parser.error(f"--workers {text!r} must be positive integers")
    return counts


if __name__ == "__main__":
    sys.exit(main())
