#!/usr/bin/env python3
"""Measure how fast ingest drains a queue of offers that waited for it on the broker.

The script starts its own Mosquitto (``max_queued_messages 0``, so the broker drops nothing) and
creates a scratch PostgreSQL database ``kooperant_bench_<random>`` on the server of
``--database-url``, migrated with ``kooperant server migrate``. It starts
``python -m kooperant server ingest`` once so that the broker keeps its persistent session,
stops it, and does the same for a bare paho subscriber. Then it publishes ``--offers`` offers of
``--members`` members with QoS 1, which the broker queues for both sessions.

Ingest is started again in a child process and the script polls the number of rows in
``offer_history`` until every offer is stored. The drain rate is the number of offers stored
between the first poll that finds a stored offer and the last poll, divided by the time between
them, so the start-up of the process is left out. The CPU seconds of the ingest process over
the same span come from psutil. ``--profile FILE`` records the ingest process with
``py-spy record`` while it drains. The bare subscriber then drains its own queue in a child
process that acknowledges and discards each message, with the same MQTT 5 Receive Maximum as
ingest, and reports its rate from the first to the last message.

The last lines give both rates, their ratio and the goal lines: ingest stores at least 20,000
offers/s, and at least half the rate of the bare subscriber.

Run from the repository root: ``.venv/bin/python bench/ingest_drain.py [--offers 100000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bench.databases import bench_database, psycopg_url
from kooperant.intervals import Interval
from kooperant.protocol import (
    Envelope,
    MachineState,
    Offer,
    ResourceKind,
    offer_subscription,
    offer_topic,
)
from server.subscriber import DEFAULT_BATCH_LIMIT, DEFAULT_CLIENT_ID
from tests.support.mosquitto import OwnMosquitto, running

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLUSTER = "bench-drain"
BARE_CLIENT_ID = "bench-bare-subscriber"
# The Receive Maximum ingest announces (see server.ingest): the bare subscriber uses the same.
RECEIVE_MAXIMUM = 2 * DEFAULT_BATCH_LIMIT
SESSION_EXPIRY_SECONDS = 3600
POLL_SECONDS = 0.25
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
GOAL_RATE = 20_000
GOAL_RATIO = 0.5


class BenchError(Exception):
    """A step of the benchmark failed; the message names the step and the cause."""


@dataclass(frozen=True)
class Drain:
    """The result of one drain: how many messages in how long, and the CPU it took."""

    count: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offers", type=int, default=100_000, help="offers to queue (100000)")
    parser.add_argument("--members", type=int, default=1_000, help="members sending them (1000)")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL server on which the scratch database is created",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=1800.0,
        help="seconds each drain may take before the script gives up (1800)",
    )
    parser.add_argument("--profile", type=Path, help="write a py-spy flame graph (SVG) here")
    parser.add_argument(
        "--profile-seconds", type=int, default=30, help="seconds py-spy records (30)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--bare-subscriber", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.bare_subscriber is not None:
        return arguments
    if arguments.offers < 1:
        parser.error(f"--offers must be at least 1, got {arguments.offers}")
    if not 1 <= arguments.members <= arguments.offers:
        parser.error(
            f"--members must be 1 to --offers ({arguments.offers}), got {arguments.members}"
        )
    if not arguments.drain_timeout > 0:
        parser.error(f"--drain-timeout must be above 0 s, got {arguments.drain_timeout}")
    if arguments.profile_seconds < 1:
        parser.error(f"--profile-seconds must be at least 1, got {arguments.profile_seconds}")
    try:
        url = make_url(arguments.database_url)
    except ArgumentError:
        parser.error(f"--database-url is not a database URL: {arguments.database_url!r}")
    if not url.drivername.startswith("postgresql"):
        parser.error(f"--database-url must be a postgresql:// URL, got {arguments.database_url!r}")
    return arguments


# --- the machine ---------------------------------------------------------------------------


def print_machine(database_url: str) -> None:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    print(f"cpus: {os.cpu_count()} ({model})")
    print(f"python: {platform.python_version()}")
    print(f"mosquitto: {mosquitto.stdout.splitlines()[0] if mosquitto.stdout else 'unknown'}")
    print(f"postgresql: {row[0] if row else 'unknown'}")


# --- offers and publishing -------------------------------------------------------------------


def offer_messages(count: int, members: int) -> list[tuple[str, bytes]]:
    """Return ``count`` offers spread over ``members`` members, as (topic, payload)."""
    now = datetime.now(UTC).replace(microsecond=0)
    messages = []
    for number in range(count):
        member = f"member-{number % members:05d}"
        resource = f"cnc-{number // members:05d}"
        offer = Offer(
            cluster=CLUSTER,
            member=member,
            resource=resource,
            kind=ResourceKind.MACHINE,
            generated_at=now,
            name=f"Machine {number}",
            capabilities=("5-axis-milling", "turning"),
            state=MachineState.NOT_EXECUTING,
            state_since=now - timedelta(hours=1),
            horizon=Interval(now, now + timedelta(days=14)),
            free_hours=6.0,
            free_intervals=(
                Interval(now, now + timedelta(hours=4)),
                Interval(now + timedelta(days=1), now + timedelta(days=1, hours=2)),
            ),
            envelope=Envelope(f"{member}-{resource}", 1),
        )
        messages.append((offer_topic(CLUSTER, member, resource), offer.to_payload()))
    return messages


def publish(port: int, messages: Sequence[tuple[str, bytes]]) -> float:
    """Publish ``messages`` with QoS 1 and return the seconds until the broker acknowledged all."""
    acknowledged = threading.Semaphore(0)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-drain-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *_: acknowledged.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1)
        for _ in messages:
            if not acknowledged.acquire(timeout=STOP_TIMEOUT_SECONDS):
                raise BenchError("the broker stopped acknowledging published offers")
        return time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()


# --- ingest ----------------------------------------------------------------------------------


def kooperant(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "kooperant", "server", *arguments]


def child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def migrate(database_url: str) -> None:
    result = subprocess.run(
        kooperant("migrate", "--database", database_url),
        env=child_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"kooperant server migrate failed: {result.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def running_ingest(database_url: str, port: int, log_file: Path) -> Iterator[psutil.Process]:
    """Run ``kooperant server ingest`` until the block ends, then stop it with SIGTERM."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            kooperant("ingest", "--database", database_url, "--broker", f"mqtt://127.0.0.1:{port}"),
            env=child_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield psutil.Process(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stored_offers(database_url: str) -> int:
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute("SELECT count(*) FROM offer_history").fetchone()
    return int(row[0]) if row else 0


def wait_until_stored(
    database_url: str,
    baseline: int,
    expected: int,
    arguments: argparse.Namespace,
    process: psutil.Process,
    log_file: Path,
) -> Drain:
    """Poll until ``expected`` offers are stored; return the drain from the first new offer.

    ``baseline`` offers were stored before the drain. When a single poll interval covers the
    whole drain, it is measured from the start of the process instead.

    With ``--profile``, py-spy starts when the first offer is stored, so the start-up of the
    process stays out of the profile.
    """
    deadline = time.monotonic() + arguments.drain_timeout
    # Until the first poll that finds new offers, the drain counts from the start of the process.
    first = (baseline, time.perf_counter(), 0.0)
    profiler = None
    try:
        while True:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                raise BenchError(f"ingest ended early; its log: {log_tail(log_file)}")
            count = stored_offers(database_url)
            now = time.perf_counter()
            cpu = cpu_seconds(process)
            if count >= expected:
                return Drain(count - first[0], now - first[1], cpu - first[2])
            if count > baseline and first[0] == baseline:
                first = (count, now, cpu)
                if arguments.profile is not None:
                    profiler = start_profiler(process.pid, arguments)
            if time.monotonic() > deadline:
                raise BenchError(
                    f"only {count} of {expected} offers were stored within "
                    f"{arguments.drain_timeout:.0f} s; raise --drain-timeout or lower --offers"
                )
            time.sleep(POLL_SECONDS)
    finally:
        if profiler is not None:
            stop_profiler(profiler)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def log_tail(log_file: Path) -> str:
    with contextlib.suppress(OSError):
        return log_file.read_text(errors="replace")[-3000:]
    return "(no log)"


def create_ingest_session(database_url: str, port: int, log_file: Path) -> None:
    """Run ingest until it stored a marker offer, so the broker keeps its subscribed session."""
    marker = offer_messages(1, 1)
    marker_topic = marker[0][0].replace("member-00000", "marker")
    marker_payload = marker[0][1].replace(b"member-00000", b"marker")
    with running_ingest(database_url, port, log_file) as process:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while stored_offers(database_url) == 0:
            if time.monotonic() > deadline:
                raise BenchError(f"ingest stored no marker offer; its log: {log_tail(log_file)}")
            if not process.is_running():
                raise BenchError(f"ingest ended early; its log: {log_tail(log_file)}")
            publish(port, [(marker_topic, marker_payload)])
            time.sleep(0.5)


def drain_ingest(
    database_url: str,
    port: int,
    baseline: int,
    expected: int,
    arguments: argparse.Namespace,
    log_file: Path,
) -> Drain:
    with running_ingest(database_url, port, log_file) as process:
        drain = wait_until_stored(database_url, baseline, expected, arguments, process, log_file)
    print(f"ingest drain: {drain.count} offers in {drain.seconds:.2f} s")
    return drain


def start_profiler(pid: int, arguments: argparse.Namespace) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(arguments.profile_seconds),
        "--threads",
        "-o",
        str(arguments.profile),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    if profiler.poll() is None:
        profiler.send_signal(signal.SIGINT)
    try:
        _, errors = profiler.communicate(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.communicate()
        return
    if profiler.returncode not in (0, -signal.SIGINT):
        print(f"py-spy failed: {errors.decode(errors='replace').strip()[-500:]}")


# --- the bare subscriber -------------------------------------------------------------------


def bare_client(port: int) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=BARE_CLIENT_ID,
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
    properties.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    return client


def run_bare_subscriber(port: int, mode: str, expected: int) -> None:
    """Create the bare subscriber's session (``mode`` "create") or drain ``expected`` messages."""
    received = 0
    first = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received, first
        client.ack(message.mid, message.qos)
        received += 1
        if received == 1:
            first = time.perf_counter()
        if received >= expected:
            done.set()

    client = bare_client(port)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.loop_start()
    try:
        if mode == "create":
            client.subscribe(offer_subscription(CLUSTER), qos=1)
            if not subscribed.wait(START_TIMEOUT_SECONDS):
                raise BenchError("the bare subscriber got no SUBACK")
            return
        process = psutil.Process()
        cpu_before = cpu_seconds(process)
        if not done.wait(START_TIMEOUT_SECONDS + expected / 1000):
            raise BenchError(f"the bare subscriber received {received} of {expected} messages")
        seconds = time.perf_counter() - first
        print(
            json.dumps(
                {"count": received, "seconds": seconds, "cpu": cpu_seconds(process) - cpu_before}
            )
        )
    finally:
        client.disconnect()
        client.loop_stop()


def bare_subscriber(port: int, mode: str, expected: int) -> str:
    result = subprocess.run(
        [sys.executable, __file__, "--bare-subscriber", str(port), mode, str(expected)],
        env=child_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"the bare subscriber failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def drain_bare(port: int, expected: int) -> Drain:
    output = bare_subscriber(port, "drain", expected).strip().splitlines()[-1]
    result = json.loads(output)
    # The first message starts the clock, so it is not counted in the rate.
    drain = Drain(int(result["count"]) - 1, float(result["seconds"]), float(result["cpu"]))
    print(f"bare drain: {drain.count} messages in {drain.seconds:.2f} s")
    return drain


# --- main ----------------------------------------------------------------------------------


def run(arguments: argparse.Namespace) -> None:
    print_machine(arguments.database_url)
    print(f"offers: {arguments.offers} from {arguments.members} members")
    with (
        tempfile.TemporaryDirectory(prefix="kooperant-drain-") as folder,
        running(OwnMosquitto(Path(folder), extra_config="max_queued_messages 0\n")) as broker,
        bench_database(make_url(arguments.database_url), keep=arguments.keep) as database_url,
    ):
        log_file = Path(folder) / "ingest.log"
        migrate(database_url)
        create_ingest_session(database_url, broker.port, log_file)
        bare_subscriber(broker.port, "create", 0)
        markers = stored_offers(database_url)
        print(f"sessions of {DEFAULT_CLIENT_ID} and {BARE_CLIENT_ID} created")

        messages = offer_messages(arguments.offers, arguments.members)
        seconds = publish(broker.port, messages)
        print(f"published: {len(messages)} offers in {seconds:.2f} s")
        del messages

        ingest = drain_ingest(
            database_url, broker.port, markers, markers + arguments.offers, arguments, log_file
        )
        stored = stored_offers(database_url) - markers
        bare = drain_bare(broker.port, arguments.offers)

    ratio = ingest.rate / bare.rate
    print(f"ingest stored: {stored} of {arguments.offers} offers")
    print(f"bare subscriber received: {bare.count + 1} of {arguments.offers} messages")
    print(f"ingest cpu: {ingest.cpu_seconds:.2f} s")
    print(f"ingest cpu per 1000 offers: {1000 * ingest.cpu_seconds / max(ingest.count, 1):.3f} s")
    print(f"bare subscriber cpu: {bare.cpu_seconds:.2f} s")
    print(f"ingest drain rate: {ingest.rate:.0f} offers/s")
    print(f"bare subscriber rate: {bare.rate:.0f} messages/s")
    print(f"ratio: {ratio:.3f}")
    rate_goal = "met" if ingest.rate >= GOAL_RATE else "NOT MET"
    print(f"goal drain rate >= {GOAL_RATE} offers/s: {rate_goal}")
    print(f"goal ratio >= {GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'NOT MET'}")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        if arguments.bare_subscriber is not None:
            port, mode, expected = arguments.bare_subscriber
            run_bare_subscriber(int(port), mode, int(expected))
        else:
            run(arguments)
    except BenchError as error:
        print(f"ingest_drain: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ingest_drain: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
