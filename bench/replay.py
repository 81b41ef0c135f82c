#!/usr/bin/env python3
"""Measure how long the offers queued during a broker outage take to reach the database.

The script starts its own Mosquitto on a free loopback port, with persistence on and
``autosave_interval 60`` as in ``config/mosquitto/mosquitto.conf``, and ``max_queued_messages 0``
so it drops nothing. It creates a scratch PostgreSQL database migrated with ``kooperant server
migrate``, and starts ``kooperant server ingest`` in a child process and ``--agents`` simulated
agents spread over processes of ``bench/agent_fleet.py``. Each agent runs the agent's own
``Publisher``, ``Outbox`` and ``Forwarder`` with its own SQLite file, client id and MQTT
session, and republishes its ``--resources`` machine offers every ``--interval-seconds``, each
time changed.

Timeline: the agents publish until every agent's first offers are stored (the warm-up). Then the
broker is stopped (SIGTERM, or SIGKILL with ``--kill-broker``) for ``--outage-seconds`` while the
agents keep queuing offers in their outboxes. Just before the broker starts again on the same
port, the script reads the message ids of every offer queued in the outboxes. The replay ends
when all of them are rows of ``offer_history``.

The last lines give the messages queued, the replay time from the start of the broker process
to the last of them stored, the replay rate (messages / replay time), and
the time to the first stored. Before them come the parts of the replay:
when the agents and ingest reconnected (their reconnect backoff), how fast the agents sent their
backlog, and how long ingest took after the last message was sent. The CPU seconds of each
process during the replay follow, and the part that bounds the replay is named.

Run from the repository root: ``.venv/bin/python bench/replay.py [--outage-seconds 600]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bench.agent_fleet import FLUSH_SECONDS
from bench.databases import bench_database, psycopg_url
from bench.machine import cpu_model
from bench.options import positive_seconds, whole_number
from bench.replay_parts import (
    CpuMeter,
    FleetEvents,
    FleetProcess,
    StoredOffers,
    ingest_connections,
    migrate,
    queued_offer_ids,
    start_ingest,
    stop_process,
)
from tests.support.mosquitto import OwnMosquitto

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLUSTER = "replay"
POLL_SECONDS = 0.25
INGEST_START_SECONDS = 60.0
# The broker configuration of config/mosquitto/mosquitto.conf that matters here, except that no
# queued message is ever dropped.
BROKER_CONFIG = "max_queued_messages 0\nmax_packet_size 1048576\n"
PERSISTENCE_CONFIG = "persistence true\npersistence_location {folder}/\nautosave_interval 60\n"


def parse_arguments(arguments: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the replay of the offers agents queued during a broker outage."
    )
    parser.add_argument("--agents", type=whole_number, default=100, help="simulated agents")
    parser.add_argument(
        "--agents-per-process", type=whole_number, default=25, help="agents per fleet process"
    )
    parser.add_argument(
        "--resources", type=whole_number, default=10, help="machine offers per agent"
    )
    parser.add_argument(
        "--interval-seconds",
        type=positive_seconds,
        default=60.0,
        help="publish interval of every agent in seconds (the agent's default is 60)",
    )
    parser.add_argument(
        "--outage-seconds",
        type=positive_seconds,
        default=600.0,
        help="how long the broker is stopped, in seconds",
    )
    parser.add_argument(
        "--reconnect-min-seconds",
        type=positive_seconds,
        default=1.0,
        help="the agents' broker.reconnect_min_seconds (agent default 1)",
    )
    parser.add_argument(
        "--reconnect-max-seconds",
        type=positive_seconds,
        default=60.0,
        help="the agents' broker.reconnect_max_seconds (agent default 60)",
    )
    parser.add_argument(
        "--replay-timeout-seconds",
        type=positive_seconds,
        default=1800.0,
        help="give up when the queued offers are not all stored this long after the restart",
    )
    parser.add_argument(
        "--kill-broker",
        action="store_true",
        help="stop the broker with SIGKILL instead of SIGTERM",
    )
    parser.add_argument(
        "--autosave-on-changes",
        action="store_true",
        help="let Mosquitto save its persistence file after every change, as the delivery tests do",
    )
    parser.add_argument(
        "--profile-folder",
        type=Path,
        default=None,
        help="record py-spy profiles of ingest and one agent fleet during the replay, as SVG here",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("KOOPERANT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL server to create the scratch database on (its database is not used)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parsed = parser.parse_args(arguments)
    if parsed.reconnect_max_seconds < parsed.reconnect_min_seconds:
        parser.error(
            f"argument --reconnect-max-seconds: {parsed.reconnect_max_seconds:g} is below "
            f"--reconnect-min-seconds {parsed.reconnect_min_seconds:g}"
        )
    try:
        url = make_url(parsed.database_url)
    except ArgumentError:
        parser.error(f"argument --database-url: invalid URL {parsed.database_url!r}")
    if not url.drivername.startswith("postgresql"):
        parser.error(f"argument --database-url: not a PostgreSQL URL: {parsed.database_url!r}")
    return parsed


@dataclass
class Setup:
    """The running parts of one benchmark run."""

    folder: Path
    broker: OwnMosquitto
    database_url: str
    database_name: str
    ingest: subprocess.Popen[bytes]
    ingest_log: Path
    fleets: list[FleetProcess]
    events: FleetEvents
    stored: StoredOffers


@dataclass(frozen=True)
class Replay:
    """The measured replay: times in Unix seconds, CPU seconds per part."""

    queued: dict[str, int]
    broker_started: float
    all_stored: float
    first_stored: float
    agent_connections: dict[int, float]
    ingest_connected: float | None
    delivered: dict[str, tuple[int, float]]
    received: dict[str, float]
    cpu_seconds: dict[str, float]


def main() -> int:
    arguments = parse_arguments()
    # Progress lines appear at once also when the output goes to a file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # SIGTERM, and SIGINT where the shell started the script with it ignored, end the run through
    # the clean-up of main, which stops the processes and drops the database.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _exit_on_signal)
    print(machine_facts(arguments.database_url))
    started = time.monotonic()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kooperant-replay-")))
        server_url = make_url(arguments.database_url)
        database_url = stack.enter_context(bench_database(server_url, keep=arguments.keep))
        setup = stack.enter_context(running_parts(arguments, folder, database_url))
        warm_up(setup, arguments)
        replay = outage_and_replay(setup, arguments)
    print(f"run time: {time.monotonic() - started:.0f} s")
    print_report(replay, arguments)
    return 0


def _exit_on_signal(number: int, _frame: object) -> None:
    raise SystemExit(128 + number)


@contextmanager
def running_parts(
    arguments: argparse.Namespace, folder: Path, database_url: str
) -> Iterator[Setup]:
    """Start the broker, migrate, start ingest and the agent fleets; stop them all on exit."""
    if arguments.autosave_on_changes:
        # OwnMosquitto's persistence saves after every change.
        broker = OwnMosquitto(folder, extra_config=BROKER_CONFIG, persistence=True)
    else:
        config = BROKER_CONFIG + PERSISTENCE_CONFIG.format(folder=folder)
        broker = OwnMosquitto(folder, extra_config=config)
    migrate(database_url, folder / "migrate.log")
    events = FleetEvents()
    fleets: list[FleetProcess] = []
    ingest = None
    stored = StoredOffers(database_url)
    broker.start()
    try:
        ingest_log = folder / "ingest.log"
        ingest = start_ingest(database_url, broker.url, CLUSTER, ingest_log)
        wait_for(
            lambda: bool(ingest_connections(ingest_log, 0.0)),
            INGEST_START_SECONDS,
            f"ingest did not connect to the broker; see its log:\n{_tail(ingest_log)}",
            process=ingest,
        )
        print(f"broker: {broker.url}, ingest pid {ingest.pid}")
        fleets = start_fleets(arguments, folder, broker.url, events)
        yield Setup(
            folder,
            broker,
            database_url,
            make_url(database_url).database or "",
            ingest,
            ingest_log,
            fleets,
            events,
            stored,
        )
    finally:
        for fleet in fleets:
            fleet.stop()
        stop_process(ingest)
        broker.stop()
        stored.close()


def start_fleets(
    arguments: argparse.Namespace, folder: Path, broker_url: str, events: FleetEvents
) -> list[FleetProcess]:
    fleets = []
    per_process = arguments.agents_per_process
    for first in range(0, arguments.agents, per_process):
        count = min(per_process, arguments.agents - first)
        fleet_arguments = [
            "--folder",
            str(folder / "agents"),
            "--broker-url",
            broker_url,
            "--cluster",
            CLUSTER,
            "--first",
            str(first),
            "--count",
            str(count),
            "--resources",
            str(arguments.resources),
            "--interval-seconds",
            str(arguments.interval_seconds),
            "--reconnect-min-seconds",
            str(arguments.reconnect_min_seconds),
            "--reconnect-max-seconds",
            str(arguments.reconnect_max_seconds),
        ]
        log_file = folder / f"fleet-{first:03d}.log"
        fleets.append(FleetProcess(fleet_arguments, log_file, events))
    for fleet in fleets:
        wait_for(
            fleet.ready.is_set,
            INGEST_START_SECONDS,
            f"agent fleet pid {fleet.pid} did not start; see its log:\n{_tail(fleet.log_file)}",
            process=fleet.process,
        )
    print(f"agent fleets: {len(fleets)} processes, pids {[fleet.pid for fleet in fleets]}")
    return fleets


def warm_up(setup: Setup, arguments: argparse.Namespace) -> None:
    """Wait until every agent delivered its first offers and ingest stored all delivered ones."""
    expected = arguments.agents * arguments.resources
    limit = arguments.interval_seconds + arguments.replay_timeout_seconds
    started = time.monotonic()

    def all_stored() -> bool:
        setup.stored.poll()
        counts = setup.events.delivered_agents()
        if len(counts) < arguments.agents or min(counts.values()) < arguments.resources:
            return False
        with setup.events.lock:
            delivered = list(setup.events.delivered)
        return all(message_id in setup.stored.first_seen for message_id in delivered)

    wait_for(all_stored, limit, f"the first {expected} offers were not all stored")
    print(f"warm-up: first offers of every agent stored after {time.monotonic() - started:.1f} s")
    rss = [psutil.Process(fleet.pid).memory_info().rss / 1e6 for fleet in setup.fleets]
    print(
        f"agent fleet memory: {statistics.mean(rss):.0f} MB RSS per process, "
        f"{sum(rss) / arguments.agents:.1f} MB per agent"
    )


def outage_and_replay(setup: Setup, arguments: argparse.Namespace) -> Replay:
    """Stop the broker for the outage, start it again and wait until the backlog is stored."""
    if arguments.kill_broker:
        setup.broker.kill()
    else:
        setup.broker.stop()
    outage_started = time.monotonic()
    print(f"broker stopped ({'SIGKILL' if arguments.kill_broker else 'SIGTERM'})")
    while (left := arguments.outage_seconds - (time.monotonic() - outage_started)) > 0:
        time.sleep(min(left, 60.0))
        elapsed = time.monotonic() - outage_started
        print(f"outage: {elapsed:.0f} of {arguments.outage_seconds:.0f} s")

    agents = range(arguments.agents)
    queued = queued_offer_ids(setup.folder / "agents", agents)
    print(f"queued offers in the outboxes: {len(queued)}")
    broker_started = time.time()
    setup.broker.start()
    assert setup.broker.process is not None
    meters = cpu_meters(setup)
    profiles = start_profiles(setup, arguments.profile_folder)
    try:
        all_stored = wait_for_backlog(setup, queued, arguments.replay_timeout_seconds)
    finally:
        stop_profiles(profiles)
    cpu_seconds = {name: meter.seconds() for name, meter in meters.items()}
    first_stored = min(setup.stored.first_seen[message_id] for message_id in queued)
    # Events are flushed in batches, so the last ones may still be on their way.
    time.sleep(2 * FLUSH_SECONDS)
    ingest = ingest_connections(setup.ingest_log, broker_started)
    with setup.events.lock:
        delivered = {
            key: setup.events.delivered[key] for key in queued if key in setup.events.delivered
        }
    connections = reconnections(setup.events.first_connection_after(broker_started), delivered)
    return Replay(
        queued,
        broker_started,
        all_stored,
        first_stored,
        connections,
        min(ingest) if ingest else None,
        delivered,
        {key: setup.stored.received_at[key] for key in queued},
        cpu_seconds,
    )


def reconnections(
    watched: dict[int, float], delivered: dict[str, tuple[int, float]]
) -> dict[int, float]:
    """Return each agent's reconnection: the watched time, or its first PUBACK if earlier.

    The fleet checks the connection state every ``WATCH_SECONDS``, so a small backlog can be
    acknowledged before the check notices the connection.
    """
    connections = dict(watched)
    for agent, moment in delivered.values():
        connections[agent] = min(connections.get(agent, moment), moment)
    return connections


def cpu_meters(setup: Setup) -> dict[str, CpuMeter]:
    assert setup.broker.process is not None
    return {
        "ingest": CpuMeter([setup.ingest.pid]),
        "PostgreSQL": CpuMeter(setup.stored.backend_pids(setup.database_name)),
        "agent fleets": CpuMeter(fleet.pid for fleet in setup.fleets),
        "Mosquitto": CpuMeter([setup.broker.process.pid]),
    }


def wait_for_backlog(setup: Setup, queued: dict[str, int], timeout: float) -> float:
    """Poll ``offer_history`` until every id of ``queued`` is there; return that time."""
    deadline = time.monotonic() + timeout
    missing = set(queued)
    last_report = time.monotonic()
    while missing:
        setup.stored.poll()
        missing -= setup.stored.first_seen.keys()
        if not missing:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(missing)} of {len(queued)} queued offers were not stored within "
                f"{timeout:g} s after the broker started (--replay-timeout-seconds)"
            )
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            print(f"replay: {len(queued) - len(missing)} of {len(queued)} stored")
        time.sleep(POLL_SECONDS)
    return time.time()


def start_profiles(setup: Setup, folder: Path | None) -> list[subprocess.Popen[bytes]]:
    """Start ``py-spy record`` on ingest and the first fleet, when a folder is given."""
    if folder is None:
        return []
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder.mkdir(parents=True, exist_ok=True)
    targets = {"ingest": setup.ingest.pid, "agent-fleet": setup.fleets[0].pid}
    profiles = []
    for name, pid in targets.items():
        command = [
            py_spy,
            "record",
            "--pid",
            str(pid),
            # A blocking py-spy stops the process at every sample, which slowed a fleet of 25
            # agents (with a paho thread each) to a fraction of its speed.
            "--nonblocking",
            "-o",
            str(folder / f"{name}.svg"),
        ]
        log = (folder / f"{name}.py-spy.log").open("wb")
        profiles.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    print(f"profiling ingest and fleet pid {setup.fleets[0].pid} into {folder}")
    return profiles


def stop_profiles(profiles: list[subprocess.Popen[bytes]]) -> None:
    for profile in profiles:
        stop_process(profile)


def print_report(replay: Replay, arguments: argparse.Namespace) -> None:
    start = replay.broker_started
    count = len(replay.queued)
    replay_seconds = replay.all_stored - start
    connections = sorted(moment - start for moment in replay.agent_connections.values())
    sent_last = max((moment for _, moment in replay.delivered.values()), default=start) - start
    received = [moment - start for moment in replay.received.values()]

    stored = sum(1 for key in replay.queued if key in replay.received)
    print(f"queued offers stored: {stored} of {count}")
    print(f"agents reconnected: {len(connections)} of {arguments.agents}")
    if connections:
        print(
            "agent reconnect after broker start: "
            f"min {connections[0]:.1f} s, median {statistics.median(connections):.1f} s, "
            f"max {connections[-1]:.1f} s"
        )
    if replay.ingest_connected is not None:
        print(f"ingest reconnect after broker start: {replay.ingest_connected - start:.1f} s")
    else:
        print("ingest reconnect after broker start: not found in its log")
    rates = agent_send_rates(replay)
    if rates:
        print(
            "agent send rate per agent while sending its backlog: "
            f"median {statistics.median(rates):.0f} messages/s, min {min(rates):.0f} messages/s"
        )
    print(f"last queued offer acknowledged by the broker: {sent_last:.1f} s after broker start")
    if received:
        span = max(received) - min(received)
        rate = count / span if span > 0 else float("inf")
        print(
            f"ingest received the backlog from {min(received):.1f} s to {max(received):.1f} s "
            f"after broker start ({rate:.0f} messages/s)"
        )
    print(f"stored after the last acknowledged: {replay.all_stored - start - sent_last:.1f} s")
    for name, seconds in replay.cpu_seconds.items():
        share = 100 * seconds / replay_seconds if replay_seconds > 0 else 0.0
        print(f"CPU during replay, {name}: {seconds:.1f} s ({share:.0f} % of one core)")
    print(f"bounded by: {bound(replay, connections, sent_last, replay_seconds)}")
    print(f"messages queued: {count}")
    print(f"replay time: {replay_seconds:.1f} s")
    print(f"replay rate: {count / replay_seconds:.0f} messages/s")
    print(f"first stored after broker start: {replay.first_stored - start:.1f} s")


def agent_send_rates(replay: Replay) -> list[float]:
    """Return each agent's backlog divided by the time from its reconnection to its last PUBACK."""
    last: dict[int, float] = {}
    counts: dict[int, int] = {}
    for agent, moment in replay.delivered.values():
        last[agent] = max(last.get(agent, 0.0), moment)
        counts[agent] = counts.get(agent, 0) + 1
    rates = []
    for agent, moment in last.items():
        connected = replay.agent_connections.get(agent)
        if connected is not None and moment > connected:
            rates.append(counts[agent] / (moment - connected))
    return rates


def bound(replay: Replay, connections: list[float], sent_last: float, total: float) -> str:
    """Name the longest of: reconnecting, sending after the last reconnect, storing after that."""
    reconnect = connections[-1] if connections else 0.0
    parts = {
        "agents' reconnect backoff": reconnect,
        "agents sending their backlog": max(0.0, sent_last - reconnect),
        "ingest storing after the last acknowledged message": max(0.0, total - sent_last),
    }
    name, _seconds = max(parts.items(), key=lambda item: item[1])
    details = ", ".join(f"{key} {value:.1f} s" for key, value in parts.items())
    return f"{name} ({details})"


def wait_for(
    condition: Callable[[], bool],
    max_seconds: float,
    failure: str,
    *,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
) -> None:
    deadline = time.monotonic() + max_seconds
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode}: {failure}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {max_seconds:g} s: {failure}")
        time.sleep(POLL_SECONDS)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def machine_facts(database_url: str) -> str:
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    postgres = row[0] if row is not None else "unknown"
    version = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, check=False)
    mosquitto = version.stdout.splitlines()[0] if version.stdout else "mosquitto unknown version"
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), {mosquitto}, PostgreSQL {postgres}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


if __name__ == "__main__":
    sys.exit(main())
