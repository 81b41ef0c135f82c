"""The services of the ingest benchmarks: their own Mosquitto, scratch databases, ingest workers.

``own_broker`` starts a Mosquitto on a free loopback port that queues without limit
(``max_queued_messages 0``), so a slow subscriber makes the broker queue, not drop. Each
``IngestWorker`` is ``python -m kooperant server ingest`` in a child process that runs the code
of this checkout (``PYTHONPATH``), with its own ``--metrics-port``. ``stored_offers`` and
``rejected_messages`` read the workers' counters from ``/metrics``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bench.databases import bench_database, psycopg_url
from bench.machine import cpu_model
from kooperant.net import free_tcp_port
from tests.support.mosquitto import OwnMosquitto

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER_START_SECONDS = 60.0
WORKER_STOP_SECONDS = 30.0
MAX_INFLIGHT = 65535
STORED_METRIC = re.compile(
    r'^kooperant_server_messages_stored_total\{kind="offer"\} ([0-9.e+]+)$', re.MULTILINE
)
REJECTED_METRIC = re.compile(
    r"^kooperant_server_messages_rejected_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE
)
CONNECTED_METRIC = re.compile(r"^kooperant_server_ingest_connected ([0-9.e+]+)$", re.MULTILINE)


def check_database_url(parser: argparse.ArgumentParser, url: str) -> None:
    """Exit with status 2 unless ``url`` is a PostgreSQL URL."""
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        driver = ""
    if not driver.startswith("postgresql"):
        parser.error(f"--database-url must be a PostgreSQL URL, got {url!r}")


def check_inflight(parser: argparse.ArgumentParser, inflight: int) -> None:
    """Exit with status 2 unless ``inflight`` fits the 16-bit MQTT packet ids."""
    if inflight > MAX_INFLIGHT:
        parser.error(f"--inflight {inflight} exceeds {MAX_INFLIGHT}, the MQTT packet id range")


def broker_config(inflight: int) -> str:
    """Return the Mosquitto lines of the benchmarks: unlimited queues, ``inflight`` per client."""
    return "\n".join(
        [
            "max_queued_messages 0",
            "max_queued_bytes 0",
            f"max_inflight_messages {inflight}",
            "message_size_limit 0",
        ]
    )


@contextmanager
def own_broker(inflight: int) -> Iterator[OwnMosquitto]:
    """Start a Mosquitto of the benchmark's own in a temporary folder; stop and remove it after."""
    folder = Path(tempfile.mkdtemp(prefix="kooperant-bench-mqtt-"))
    try:
        broker = OwnMosquitto(folder, extra_config=broker_config(inflight))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def migrated_database(server_url: str, *, keep: bool) -> Iterator[str]:
    """Create a scratch database on ``server_url``, migrate it with the CLI, drop it after."""
    with bench_database(make_url(server_url), keep=keep) as database_url:
        result = subprocess.run(
            [sys.executable, "-m", "kooperant", "server", "migrate", "--database", database_url],
            env=child_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"kooperant server migrate failed with status {result.returncode}:\n{result.stderr}"
            )
        yield database_url


def child_environment() -> dict[str, str]:
    """Return the environment of a child process that must run this checkout's code."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.setdefault("KOOPERANT_LANG", "en")
    return environment


@dataclass
class IngestWorker:
    """One ``kooperant server ingest`` process and its metrics port."""

    process: subprocess.Popen[bytes]
    metrics_port: int
    client_id: str
    log_file: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
        ) as response:
            return str(response.read().decode("utf-8"))

    def stop(self) -> None:
        """Stop the worker with SIGTERM (kill it after ``WORKER_STOP_SECONDS``)."""
        stop_workers([self])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def stop_workers(workers: Sequence[IngestWorker]) -> None:
    """Send SIGTERM to every worker at once, then kill those still running after
    ``WORKER_STOP_SECONDS``. Ingest may still store messages it received before it exits."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_SECONDS
    for worker in workers:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(5.0)


def start_worker(
    database_url: str,
    broker_url: str,
    client_id: str,
    log_folder: Path,
    shared_group: str | None = None,
) -> IngestWorker:
    """Start one ingest worker; return once it serves ``/metrics`` and is connected."""
    worker = launch_worker(database_url, broker_url, client_id, log_folder, shared_group)
    wait_until_connected(worker)
    return worker


def launch_worker(
    database_url: str,
    broker_url: str,
    client_id: str,
    log_folder: Path,
    shared_group: str | None = None,
) -> IngestWorker:
    """Start one ingest worker process with its own metrics port, and return at once."""
    metrics_port = free_tcp_port()
    command = [
        sys.executable, "-m", "kooperant", "server", "ingest",
        "--database", database_url,
        "--broker", broker_url,
        "--client-id", client_id,
        "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    if shared_group is not None:
        command += ["--shared-group", shared_group]
    log_file = log_folder / f"{client_id}.log"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, env=child_environment(), stdout=log, stderr=subprocess.STDOUT
        )
    return IngestWorker(process, metrics_port, client_id, log_file)


def wait_until_connected(worker: IngestWorker) -> None:
    """Wait until ``worker`` reports a broker connection in ``/metrics``; stop it on failure."""
    deadline = time.monotonic() + WORKER_START_SECONDS
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(
                f"ingest worker {worker.client_id} exited with status "
                f"{worker.process.returncode}:\n{worker.log_tail()}"
            )
        try:
            if _gauge(CONNECTED_METRIC, worker.metrics()) == 1:
                return
        except OSError:
            pass
        time.sleep(0.1)
    worker.stop()
    raise TimeoutError(
        f"ingest worker {worker.client_id} did not connect within "
        f"{WORKER_START_SECONDS:.0f} s:\n{worker.log_tail()}"
    )


def stored_offers(workers: Sequence[IngestWorker]) -> int:
    """Return the offers the workers stored since they started, from their ``/metrics``."""
    return sum(_counter(STORED_METRIC, worker.metrics()) for worker in workers)


def rejected_messages(workers: Sequence[IngestWorker]) -> int:
    return sum(_counter(REJECTED_METRIC, worker.metrics(), every=True) for worker in workers)


def _counter(pattern: re.Pattern[str], text: str, *, every: bool = False) -> int:
    values = [int(float(value)) for value in pattern.findall(text)]
    if not values and not every:
        raise ValueError(f"/metrics has no line matching {pattern.pattern}")
    return sum(values)


def _gauge(pattern: re.Pattern[str], text: str) -> float:
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


@dataclass(frozen=True, slots=True)
class DatabaseCounts:
    """Rows that ingest wrote: offers in the history, distinct message ids, rejected messages."""

    history_rows: int
    distinct_ids: int
    rejected: int


def database_counts(database_url: str) -> DatabaseCounts:
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute(
            "SELECT count(*), count(DISTINCT message_id), "
            "(SELECT count(*) FROM rejected_messages) FROM offer_history"
        ).fetchone()
    assert row is not None
    return DatabaseCounts(int(row[0]), int(row[1]), int(row[2]))


def stored_message_ids(database_url: str) -> set[str]:
    with psycopg.connect(psycopg_url(database_url)) as connection:
        return {row[0] for row in connection.execute("SELECT message_id FROM offer_history")}


def backend_pids(database_url: str) -> list[int]:
    """Return the PostgreSQL server processes serving connections to this database."""
    name = make_url(database_url).database
    with psycopg.connect(psycopg_url(database_url)) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return [int(row[0]) for row in rows]


class CpuMeter:
    """CPU seconds of named groups of processes between ``start`` and ``stop``."""

    def __init__(self, groups: dict[str, Sequence[int]]) -> None:
        self._groups = groups
        self._before: dict[str, float] = {}
        self._started = 0.0
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def start(self) -> None:
        self._before = {name: _cpu_seconds(pids) for name, pids in self._groups.items()}
        self._machine_before = _machine_busy_seconds()
        self._started = time.monotonic()

    def stop(self) -> None:
        self.wall = time.monotonic() - self._started
        self.seconds = {
            name: _cpu_seconds(pids) - self._before[name] for name, pids in self._groups.items()
        }
        self.seconds["whole machine"] = _machine_busy_seconds() - self._machine_before

    def lines(self) -> list[str]:
        """Return one line per group: CPU seconds and the share of one core over the wall time."""
        wall = max(self.wall, 1e-9)
        return [
            f"cpu {name}: {seconds:.1f} s = {100 * seconds / wall:.0f}% of one core"
            for name, seconds in self.seconds.items()
        ]


def _cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def machine_facts(database_url: str) -> list[str]:
    """Return lines naming the CPU, Python, Mosquitto and PostgreSQL of this run."""
    with psycopg.connect(psycopg_url(database_url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    postgres = row[0] if row is not None else "unknown"
    return [
        f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.release()}",
        f"python: {platform.python_version()}, mosquitto: {_mosquitto_version()}, "
        f"postgresql: {postgres}",
    ]


def _mosquitto_version() -> str:
    try:
        result = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"mosquitto version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "unknown"
