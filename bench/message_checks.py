#!/usr/bin/env python3
"""Measure the CPU time the aggregator spends checking one received offer, withdrawal and status.

The script builds ``--messages`` distinct valid payloads of each kind, as an agent publishes
them, and passes each to ``server.validation.validated_offer``, ``validated_withdrawal`` and
``validated_status`` with its topic. These check the size, topic layout, JSON, schema version,
envelope, JSON Schema, dates and the topic's cluster, member and resource. The script times
each kind with the process CPU time (``time.process_time``), ``--rounds`` times, and reports the
best round, because other processes on a shared machine only ever add time. It also times the
offer check with jsonschema alone (jsonschema-rs switched off, on a tenth of the offers) for
comparison, and the CPU work ``Storage.store_offer`` does before its SQL: ``Offer.to_payload``
and ``message_key``. No broker or database is used.

Run from the repository root: ``.venv/bin/python bench/message_checks.py [--messages 20000]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TypeVar
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model
from bench.options import whole_number
from kooperant.intervals import Interval
from kooperant.protocol import (
    Envelope,
    MachineState,
    MemberState,
    MemberStatus,
    Offer,
    OfflineReason,
    ResourceKind,
    Withdrawal,
    WithdrawalReason,
    message_key,
    offer_topic,
    status_topic,
    withdrawal_topic,
)
from kooperant.protocol.schema_check import SchemaCheck
from server.validation import validated_offer, validated_status, validated_withdrawal

GOAL_OFFER_US = 40.0
CLUSTER = "pomorskie-metal"
T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
FIRST_SEQ = 1_796_000_000_000_000
Item = TypeVar("Item")


@dataclass(frozen=True, slots=True)
class Message:
    """A valid topic and payload. The check functions raise if they reject one."""

    topic: str
    payload: bytes


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_arguments(argv)
    print(f"machine: {machine_facts()}", flush=True)
    print("broker and database: not used (the checks run in this process)", flush=True)

    offers = [offer_message(index) for index in range(options.messages)]
    withdrawals = [withdrawal_message(index) for index in range(options.messages)]
    statuses = [status_message(index) for index in range(options.messages)]
    size = sum(len(message.payload) for message in offers) / len(offers)
    print(f"built {options.messages} messages of each kind; offers of {size:.0f} bytes on average")

    results = {
        "offer": best_us(offers, check_offer, options.rounds),
        "withdrawal": best_us(withdrawals, check_withdrawal, options.rounds),
        "status": best_us(statuses, check_status, options.rounds),
    }
    baseline = offers[: max(1, options.messages // 10)]
    with mock.patch.object(SchemaCheck, "rust_accepts", return_value=False):
        python_only = best_us(baseline, check_offer, options.rounds)
    print(f"offer check with jsonschema only: {python_only:.1f} us/message (informational)")
    parsed = [validated_offer(message.topic, message.payload) for message in offers]
    reserialise = best_us(parsed, store_offer_work, options.rounds)
    print(f"store_offer CPU before SQL (to_payload, message_key): {reserialise:.1f} us/offer")

    print(f"checked {options.messages * options.rounds} messages of each kind, none rejected")
    for kind, microseconds in results.items():
        print(f"{kind} check: {microseconds:.1f} us/message")
    for kind, microseconds in results.items():
        print(f"{kind} checks per second per core: {1e6 / microseconds:.0f}")
    verdict = "met" if results["offer"] <= GOAL_OFFER_US else "NOT MET"
    print(f"goal offer check <= {GOAL_OFFER_US:.0f} us: {verdict}")
    return 0


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the CPU time of checking one received offer, withdrawal and status."
    )
    parser.add_argument(
        "--messages",
        type=whole_number,
        default=20_000,
        help="distinct messages of each kind checked per round (default: 20000)",
    )
    parser.add_argument(
        "--rounds",
        type=whole_number,
        default=5,
        help="rounds over all messages; the fastest round is reported (default: 5)",
    )
    return parser.parse_args(argv)


def best_us(items: Sequence[Item], work: Callable[[Item], object], rounds: int) -> float:
    """Return the CPU microseconds per item of the fastest of ``rounds`` runs of ``work``."""
    work(items[0])
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        for item in items:
            work(item)
        best = min(best, time.process_time() - started)
    return best / len(items) * 1e6


def check_offer(message: Message) -> object:
    return validated_offer(message.topic, message.payload)


def check_withdrawal(message: Message) -> object:
    return validated_withdrawal(message.topic, message.payload)


def check_status(message: Message) -> object:
    return validated_status(message.topic, message.payload)


def store_offer_work(offer: Offer) -> object:
    return message_key(offer.envelope, offer.to_payload())


def offer_message(index: int) -> Message:
    """Return a machine offer with a state, a horizon, two free intervals and an envelope."""
    resource = f"cnc-{index:05d}"
    generated_at = T0 + timedelta(seconds=index)
    free = (
        Interval(generated_at, generated_at + timedelta(hours=4)),
        Interval(generated_at + timedelta(hours=24), generated_at + timedelta(hours=26)),
    )
    offer = Offer(
        cluster=CLUSTER,
        member=member_of(index),
        resource=resource,
        kind=ResourceKind.MACHINE,
        generated_at=generated_at,
        name=f"DMU 50 no. {index}",
        capabilities=("5-axis-milling", "turning"),
        state=MachineState.NOT_EXECUTING,
        state_since=generated_at - timedelta(hours=1),
        horizon=Interval(generated_at, generated_at + timedelta(days=14)),
        free_hours=6.0,
        free_intervals=free,
        accepts_requests=index % 2 == 0,
        envelope=Envelope(f"offer-{index:08d}", FIRST_SEQ + index),
    )
    return Message(offer_topic(CLUSTER, offer.member, resource), offer.to_payload())


def withdrawal_message(index: int) -> Message:
    withdrawal = Withdrawal(
        cluster=CLUSTER,
        member=member_of(index),
        resource=f"cnc-{index:05d}",
        withdrawn_at=T0 + timedelta(seconds=index),
        reason=WithdrawalReason.WITHDRAWN,
        envelope=Envelope(f"withdrawal-{index:08d}", FIRST_SEQ + index),
    )
    topic = withdrawal_topic(CLUSTER, withdrawal.member, withdrawal.resource)
    return Message(topic, withdrawal.to_payload())


def status_message(index: int) -> Message:
    online = index % 2 == 0
    status = MemberStatus(
        cluster=CLUSTER,
        member=member_of(index),
        state=MemberState.ONLINE if online else MemberState.OFFLINE,
        connected_at=T0 + timedelta(seconds=index, microseconds=index % 1000),
        reason=None if online else OfflineReason.CONNECTION_LOST,
        agent_version="0.9.0",
    )
    return Message(status_topic(CLUSTER, status.member), status.to_payload())


def member_of(index: int) -> str:
    return f"member-{index % 1000:03d}"


def machine_facts() -> str:
    versions = ", ".join(
        f"{package} {metadata.version(package)}" for package in ("jsonschema", "jsonschema-rs")
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
        f"{versions}, {platform.system()} {platform.release()}"
    )


if __name__ == "__main__":
    sys.exit(main())
