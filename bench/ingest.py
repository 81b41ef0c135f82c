#!/usr/bin/env python3
"""Measure how many offers per second ingest stores in PostgreSQL with no loss.

The script starts its own Mosquitto on a free loopback port (unlimited queues, so the broker
queues for a slow subscriber instead of dropping) and a scratch database
``kooperant_bench_<random>`` migrated with ``kooperant server migrate``. Publisher processes
simulate ``--members`` agents with ``--resources`` resources each and publish realistic
``kooperant.offer/1.2`` offers (about 950 bytes on average) at QoS 1 on
``kooperant/v1/bench/{member}/offers/{resource}``, every one with a unique message id.

1. Raw rate: a bare paho subscriber in its own process subscribes at QoS 1 to the same filter,
   acknowledges and discards. The publishers send ``--raw-messages`` as fast as they can, and
   the subscriber's receive rate is the broker's raw delivery rate on this machine.
2. Ingest rate: ``kooperant server ingest`` runs in a child process. For each rate of
   ``--rates`` the publishers send offers at that rate for ``--step-seconds``, and the script
   reads ingest's stored counter from ``/metrics``. A step is sustained when the publishers
   reached 90% of the rate and the backlog at its end was at most ``--max-backlog-seconds`` of
   offers. Also, every offer of the step must be stored within ``--drain-seconds`` after it,
   and nothing may be rejected. Stepping stops after the first step that is not sustained, or
   before a step that could end after ``--time-limit``.
3. Loss: after the last step the script waits until ingest stops storing, then compares the
   message ids of every published offer with ``offer_history.message_id``.

The last lines give the highest sustained rate, the raw rate, their ratio and the goals.
Run from the repository root: ``.venv/bin/python bench/ingest.py``.
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

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_load import (
    BareSubscriber,
    BatchResult,
    LoadShape,
    Publishers,
    expected_message_ids,
)
from bench.ingest_processes import (
    CpuMeter,
    IngestWorker,
    backend_pids,
    check_database_url,
    check_inflight,
    database_counts,
    machine_facts,
    migrated_database,
    own_broker,
    rejected_messages,
    start_worker,
    stored_message_ids,
    stored_offers,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_RATES = "100,200,500,1000,2000,5000,10000,15000,20000,25000,30000"
STORED_GOAL = 20_000
RATIO_GOAL = 0.5
# The share of the target rate that the publishers must reach in a sustained step.
OFFERED_SHARE = 0.9
POLL_SECONDS = 1.0
# After the last step: how long ingest may store nothing before the loss check starts.
IDLE_SECONDS = 10.0
WARM_UP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of the ingest run."""

    target: int
    offered_rate: float
    stored_rate: float
    backlog_at_end: int
    drain_seconds: float | None
    rejected: int
    sustained: bool
    reason: str


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started = time.monotonic()
    run_tag = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="kooperant-bench-ingest-") as folder,
        own_broker(options.inflight) as broker,
        migrated_database(options.database_url, keep=options.keep) as database_url,
    ):
        for line in machine_facts(database_url):
            print(line)
        print(
            f"load: {options.members} members x {options.resources} resources, "
            f"{options.publishers} publishers, QoS 1, broker max_inflight_messages "
            f"{options.inflight}, max_queued_messages 0"
        )
        shape = LoadShape(
            options.members, options.resources, broker.port, run_tag, inflight=options.inflight
        )
        publishers = Publishers(shape, options.publishers)
        try:
            return run(options, shape, publishers, broker.url, database_url, Path(folder), started)
        finally:
            publishers.close()


def run(
    options: argparse.Namespace,
    shape: LoadShape,
    publishers: Publishers,
    broker_url: str,
    database_url: str,
    folder: Path,
    started: float,
) -> int:
    raw_rate = measure_raw_rate(options, shape, publishers)

    worker = start_worker(database_url, broker_url, f"bench-ingest-{shape.run_tag}", folder)
    try:
        published: list[BatchResult] = []
        warm_up(options, publishers, worker, published)
        steps = run_steps(options, publishers, worker, database_url, published, started)
        deadline = started + options.time_limit + options.drain_limit
        complete = wait_until_idle(worker, sum(result.published for result in published), deadline)
        loss_lines = check_loss(database_url, shape.run_tag, published, worker)
        if not complete:
            loss_lines.append(
                "ingest was still storing when the wait ended: missing offers may still be queued"
            )
    finally:
        worker.stop()

    for line in options.top_cpu:
        print(f"top step {line}")
    print_summary(steps, raw_rate, loss_lines)
    return 0


def warm_up(
    options: argparse.Namespace,
    publishers: Publishers,
    worker: IngestWorker,
    published: list[BatchResult],
) -> None:
    """Publish ``--warm-up-offers`` untimed and wait for them, so the first step does not pay
    for ingest's first database connections and caches."""
    results = publishers.run(options.warm_up_offers, None, options.time_limit)
    published.extend(results)
    count = sum(result.published for result in results)
    drain = wait_for_stored(worker, count, WARM_UP_SECONDS)
    stored = stored_offers([worker])
    if drain is None:
        print(f"warm-up: ingest stored {stored} of {count} offers in {WARM_UP_SECONDS:.0f} s")
    else:
        print(f"warm-up: ingest stored {count} offers in {drain:.1f} s")


def measure_raw_rate(
    options: argparse.Namespace, shape: LoadShape, publishers: Publishers
) -> float:
    """Publish ``--raw-messages`` at full speed to a bare subscriber; return its receive rate."""
    subscriber = BareSubscriber(shape)
    try:
        meter = CpuMeter(
            {
                "bare subscriber": [subscriber.pid or 0],
                "publishers": publishers.pids,
                "mosquitto": _mosquitto_pids(),
            }
        )
        meter.start()
        results = publishers.run(options.raw_messages, None, options.time_limit)
        published = sum(result.published for result in results)
        count, last = subscriber.finish(published, timeout=60.0)
        meter.stop()
    finally:
        subscriber.close()
    start = min(result.started for result in results)
    end = max(result.finished for result in results)
    publish_rate = published / max(end - start, 1e-9)
    raw_rate = count / max((last or start) - start, 1e-9)
    print(
        f"raw: published {published} at {publish_rate:.0f} msgs/s, "
        f"bare subscriber received {count} at {raw_rate:.0f} msgs/s"
    )
    if count < published:
        print(f"raw: the broker did not deliver {published - count} of {published} messages")
    for line in meter.lines():
        print(f"raw {line}")
    return raw_rate


def _mosquitto_pids() -> list[int]:
    # The broker is this script's child: the only mosquitto process whose parent is this one.
    return [child.pid for child in psutil.Process().children() if child.name() == "mosquitto"]


def run_steps(
    options: argparse.Namespace,
    publishers: Publishers,
    worker: IngestWorker,
    database_url: str,
    published: list[BatchResult],
    started: float,
) -> list[StepResult]:
    steps: list[StepResult] = []
    for target in options.rates:
        elapsed = time.monotonic() - started
        if (
            elapsed + options.step_seconds + options.drain_seconds + IDLE_SECONDS
            > options.time_limit
        ):
            print(
                f"step {target}/s: skipped, it could end after the time limit "
                f"of {options.time_limit:.0f} s"
            )
            break
        meter = CpuMeter(
            {
                "ingest": [worker.pid],
                "mosquitto": _mosquitto_pids(),
                "postgresql": backend_pids(database_url),
                "publishers": publishers.pids,
            }
        )
        step = run_step(options, target, publishers, worker, published, meter)
        steps.append(step)
        print(
            f"step {target}/s: offered {step.offered_rate:.0f}/s, stored {step.stored_rate:.0f}/s, "
            f"backlog at end {step.backlog_at_end}, drained "
            f"{_drain_text(step.drain_seconds, options.drain_seconds)}, "
            f"{'sustained' if step.sustained else 'NOT sustained: ' + step.reason}"
        )
        for line in meter.lines():
            print(f"step {target}/s {line}")
        if step.sustained:
            options.top_cpu = meter.lines()
        else:
            break
    return steps


def _drain_text(drain: float | None, limit: float) -> str:
    return f"in {drain:.1f} s" if drain is not None else f"NOT within {limit:.0f} s"


def run_step(
    options: argparse.Namespace,
    target: int,
    publishers: Publishers,
    worker: IngestWorker,
    published: list[BatchResult],
    meter: CpuMeter,
) -> StepResult:
    stored_before = stored_offers([worker])
    rejected_before = rejected_messages([worker])
    limit = options.max_backlog_seconds * target
    step_started = time.monotonic()
    stopped_early = [False]

    def keep_going() -> bool:
        # The publishers stop once the backlog is far over the limit, so a step far above
        # ingest's capacity does not leave more than ingest can store before the time limit.
        offered = target * (time.monotonic() - step_started)
        backlog = stored_before + offered - stored_offers([worker])
        stopped_early[0] = backlog > limit + target
        return not stopped_early[0]

    meter.start()
    results = publishers.run(
        int(target * options.step_seconds), float(target), options.step_seconds, keep_going
    )
    published.extend(results)
    stored_at_end = stored_offers([worker])
    meter.stop()

    count = sum(result.published for result in results)
    start = min(result.started for result in results)
    offered_rate = count / max(max(result.last_sent for result in results) - start, 1e-9)
    backlog = stored_before + count - stored_at_end
    drain = wait_for_stored(worker, stored_before + count, options.drain_seconds)
    # Stored rate: the step's offers over the time from its start until the last one was stored
    # (or until the drain time ran out).
    stored_rate = (stored_offers([worker]) - stored_before) / max(time.monotonic() - start, 1e-9)
    rejected = rejected_messages([worker]) - rejected_before

    reasons = []
    if stopped_early[0]:
        reasons.append("stopped early because the backlog grew over the limit")
    if offered_rate < OFFERED_SHARE * target:
        reasons.append(f"the publishers reached only {offered_rate:.0f}/s")
    if backlog > options.max_backlog_seconds * offered_rate:
        reasons.append(f"backlog {backlog} is over {options.max_backlog_seconds:g} s of offers")
    if drain is None:
        reasons.append(f"backlog not stored within {options.drain_seconds:g} s")
    if rejected:
        reasons.append(f"{rejected} messages rejected")
    return StepResult(
        target, offered_rate, stored_rate, backlog, drain, rejected, not reasons, "; ".join(reasons)
    )


def wait_for_stored(worker: IngestWorker, expected: int, seconds: float) -> float | None:
    """Wait until ``expected`` offers are stored; return the seconds it took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if stored_offers([worker]) >= expected:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def wait_until_idle(worker: IngestWorker, expected: int, deadline: float) -> bool:
    """Wait until every published offer is stored, ingest stored none for ``IDLE_SECONDS``,
    or ``deadline`` (a ``time.monotonic`` value) passed; return False in the last case."""
    last = stored_offers([worker])
    last_change = time.monotonic()
    while (
        last < expected
        and time.monotonic() - last_change < IDLE_SECONDS
        and time.monotonic() < deadline
    ):
        time.sleep(POLL_SECONDS)
        current = stored_offers([worker])
        if current != last:
            last, last_change = current, time.monotonic()
    return last >= expected or time.monotonic() < deadline


def check_loss(
    database_url: str, run_tag: str, published: Sequence[BatchResult], worker: IngestWorker
) -> list[str]:
    """Compare the published message ids with the database; return the loss lines."""
    expected = set(expected_message_ids(run_tag, published))
    stored = stored_message_ids(database_url)
    counts = database_counts(database_url)
    missing = len(expected - stored)
    unexpected = len(stored - expected)
    unacknowledged = sum(result.published - result.acknowledged for result in published)
    lines = [
        f"published offers: {len(expected)} ({unacknowledged} without PUBACK)",
        f"offer_history rows: {counts.history_rows}, distinct message ids {counts.distinct_ids}",
        f"rejected messages: {counts.rejected} in the database, "
        f"{rejected_messages([worker])} counted by ingest",
        f"missing offers: {missing}",
    ]
    if unexpected:
        lines.append(f"unexpected offers: {unexpected}")
    return lines


def print_summary(steps: Sequence[StepResult], raw_rate: float, loss_lines: Sequence[str]) -> None:
    for line in loss_lines:
        print(line)
    lost = next(int(line.split()[-1]) for line in loss_lines if line.startswith("missing offers:"))
    sustained = [step for step in steps if step.sustained]
    best = max(sustained, key=lambda step: step.stored_rate) if sustained else None
    best_rate = best.stored_rate if best is not None and lost == 0 else 0.0
    ratio = best_rate / raw_rate if raw_rate > 0 else 0.0
    if steps:
        fastest = max(steps, key=lambda step: step.stored_rate)
        print(
            f"highest stored rate of a step: {fastest.stored_rate:.0f} offers/s "
            f"(step {fastest.target}/s, {'sustained' if fastest.sustained else 'not sustained'})"
        )
    print(f"loss: {'0' if lost == 0 else lost} offers lost")
    print(f"top sustained step: {best.target if best else 'none'}/s")
    print(f"raw delivery rate: {raw_rate:.0f} msgs/s")
    print(f"sustained stored rate: {best_rate:.0f} offers/s")
    print(f"ratio stored/raw: {ratio:.3f}")
    print(
        f"goal stored >= {STORED_GOAL} offers/s: {'met' if best_rate >= STORED_GOAL else 'NOT MET'}"
    )
    print(f"goal ratio >= {RATIO_GOAL}: {'met' if ratio >= RATIO_GOAL else 'NOT MET'}")


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL server on which to create the scratch database",
    )
    parser.add_argument(
        "--rates",
        default=DEFAULT_RATES,
        help="comma-separated offered rates of the steps, in offers/s",
    )
    parser.add_argument(
        "--step-seconds", type=float, default=15.0, help="length of each step, in seconds"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10.0,
        help="time after a step in which its backlog must be stored, in seconds",
    )
    parser.add_argument(
        "--max-backlog-seconds",
        type=float,
        default=2.0,
        help="largest backlog at a step's end, in seconds of its offered rate",
    )
    parser.add_argument(
        "--raw-messages", type=int, default=200_000, help="messages of the raw-rate measurement"
    )
    parser.add_argument(
        "--warm-up-offers",
        type=int,
        default=200,
        help="offers published and stored before the first step, not measured",
    )
    parser.add_argument("--members", type=int, default=1000, help="simulated members (agents)")
    parser.add_argument("--resources", type=int, default=20, help="resources per member")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument(
        "--inflight",
        type=int,
        default=1000,
        help="QoS 1 messages in flight per MQTT client (broker and publishers)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=480.0,
        help="no step starts that could end after this many seconds from the start",
    )
    parser.add_argument(
        "--drain-limit",
        type=float,
        default=60.0,
        help="maximum wait after --time-limit for ingest to store the last backlog, in seconds",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    options = parser.parse_args(argv)
    check_database_url(parser, options.database_url)
    check_inflight(parser, options.inflight)
    options.rates = _rates(parser, options.rates)
    for name in (
        "step_seconds",
        "drain_seconds",
        "max_backlog_seconds",
        "time_limit",
        "drain_limit",
    ):
        _check_positive(parser, name, getattr(options, name))
    for name in (
        "raw_messages",
        "warm_up_offers",
        "members",
        "resources",
        "publishers",
        "inflight",
    ):
        _check_positive(parser, name, getattr(options, name))
    if options.publishers > options.members:
        parser.error(
            f"--publishers {options.publishers} exceeds --members {options.members}: "
            "each publisher needs a member"
        )
    options.top_cpu = []
    return options


def _rates(parser: argparse.ArgumentParser, text: str) -> list[int]:
    try:
        rates = [int(item) for item in text.split(",")]
    except ValueError:
        parser.error(f"--rates {text!r} is not a comma-separated list of integers")
    if not rates or any(rate <= 0 for rate in rates) or rates != sorted(rates):
        parser.error(f"--rates {text!r} must be positive integers in increasing order")
    return rates


def _check_positive(parser: argparse.ArgumentParser, name: str, value: float) -> None:
    if value <= 0:
        parser.error(f"--{name.replace('_', '-')} {value:g} must be positive")


if __name__ == "__main__":
    sys.exit(main())
