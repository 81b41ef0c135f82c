"""The processes bench/replay.py runs and watches: agent fleets, ingest, and the stored offers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
import psycopg

from bench.agent_fleet import audit_log_path
from bench.databases import psycopg_url

REPO_ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_SECONDS = 30.0


def child_environment() -> dict[str, str]:
    """Return the environment of a child process that runs this checkout's code, in English."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "KOOPERANT_LANG": "en"}


@dataclass
class FleetEvents:
    """The events the agent fleets reported, filled by one reader thread per fleet process."""

    connected: dict[int, list[float]] = field(default_factory=dict)
    disconnected: dict[int, list[float]] = field(default_factory=dict)
    delivered: dict[str, tuple[int, float]] = field(default_factory=dict)
    failed_attempts: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: dict[str, object]) -> None:
        kind = event.get("event")
        agent = event.get("agent")
        with self.lock:
            if kind == "connected" and isinstance(agent, int):
                self.connected.setdefault(agent, []).append(float(str(event["time"])))
            elif kind == "disconnected" and isinstance(agent, int):
                self.disconnected.setdefault(agent, []).append(float(str(event["time"])))
            elif kind == "delivered" and isinstance(agent, int):
                self.delivered[str(event["message_id"])] = (agent, float(str(event["time"])))
            elif kind == "stopped" and isinstance(agent, int):
                self.failed_attempts[agent] = int(str(event["failed_attempts"]))

    def first_connection_after(self, moment: float) -> dict[int, float]:
        """Return each agent's first connection at or after ``moment``."""
        with self.lock:
            return {
                agent: min(times)
                for agent, all_times in self.connected.items()
                if (times := [value for value in all_times if value >= moment])
            }

    def delivered_agents(self) -> dict[int, int]:
        """Return the number of offers each agent delivered so far."""
        counts: dict[int, int] = {}
        with self.lock:
            for agent, _ in self.delivered.values():
                counts[agent] = counts.get(agent, 0) + 1
        return counts


class FleetProcess:
    """One ``bench.agent_fleet`` process, whose JSON lines go to a ``FleetEvents``."""

    def __init__(self, arguments: list[str], log_file: Path, events: FleetEvents) -> None:
        self.log_file = log_file
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.agent_fleet", *arguments],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_environment(),
                cwd=REPO_ROOT,
                text=True,
            )
        self.ready = threading.Event()
        self._events = events
        self._reader = threading.Thread(target=self._read, name="fleet reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "ready":
                self.ready.set()
            self._events.add(event)

    def stop(self) -> None:
        """Stop the agents with SIGTERM (a clean disconnect), or SIGKILL after a timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """End ``process`` with SIGINT, then SIGKILL if it is still running after a timeout."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_ingest(
    database_url: str, broker_url: str, cluster: str, log_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``kooperant server ingest`` with JSON log lines in ``log_file``."""
    command = [
        sys.executable,
        "-m",
        "kooperant",
        "--log-format",
        "json",
        "server",
        "ingest",
        "--database",
        database_url,
        "--broker",
        broker_url,
        "--cluster",
        cluster,
    ]
    with log_file.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(),
            cwd=REPO_ROOT,
        )


def migrate(database_url: str, log_file: Path) -> None:
    """Run ``kooperant server migrate``; raise ``RuntimeError`` with its output when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "kooperant", "server", "migrate", "--database", database_url],
        capture_output=True,
        text=True,
        env=child_environment(),
        cwd=REPO_ROOT,
        check=False,
    )
    log_file.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"kooperant server migrate failed:\n{result.stdout}{result.stderr}")


def ingest_connections(log_file: Path, since: float) -> list[float]:
    """Return the times of ingest's log lines about connecting to the broker after ``since``."""
    times = []
    try:
        text = log_file.read_text(errors="replace")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        message = str(event.get("message", ""))
        if not message.startswith(("Connected to MQTT broker", "Connection to MQTT broker")):
            continue
        if "restored" not in message and "subscribed" not in message:
            continue
        moment = datetime.fromisoformat(str(event["time"])).timestamp()
        if moment >= since:
            times.append(moment)
    return times


def queued_offer_ids(folder: Path, agents: Iterable[int]) -> dict[str, int]:
    """Return the message id of every offer queued in the agents' outboxes, with its agent."""
    queued = {}
    for agent in agents:
        path = audit_log_path(folder, agent)
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            rows = connection.execute(
                "SELECT message_id FROM outbox WHERE kind = 'offer' AND length(payload) > 0"
            ).fetchall()
        for (message_id,) in rows:
            queued[message_id] = agent
    return queued


class StoredOffers:
    """The message ids of ``offer_history``, read incrementally by row id."""

    def __init__(self, database_url: str) -> None:
        self._connection = psycopg.connect(psycopg_url(database_url), autocommit=True)
        self._last_id = 0
        self.first_seen: dict[str, float] = {}
        """When each message id was first seen by ``poll``, in Unix seconds."""
        self.received_at: dict[str, float] = {}
        """Ingest's ``received_at`` of each message id, in Unix seconds."""

    def close(self) -> None:
        self._connection.close()

    def poll(self) -> int:
        """Read the rows added since the last poll; return how many."""
        rows = self._connection.execute(
            "SELECT id, message_id, received_at FROM offer_history WHERE id > %s ORDER BY id",
            (self._last_id,),
        ).fetchall()
        now = time.time()
        for row_id, message_id, received_at in rows:
            self._last_id = max(self._last_id, row_id)
            if message_id is not None and message_id not in self.first_seen:
                self.first_seen[message_id] = now
                self.received_at[message_id] = _as_timestamp(received_at)
        return len(rows)

    def backend_pids(self, database: str) -> list[int]:
        """Return the PostgreSQL backend processes of other connections to ``database``."""
        rows = self._connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
        return [int(row[0]) for row in rows]


def _as_timestamp(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


class CpuMeter:
    """CPU seconds (user + system) of a set of processes between ``start`` and ``stop``."""

    def __init__(self, pids: Iterable[int]) -> None:
        self._processes = []
        for pid in pids:
            try:
                self._processes.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        self._start = self._total()

    def _total(self) -> float:
        total = 0.0
        for process in self._processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def seconds(self) -> float:
        """Return the CPU seconds used since this meter was made."""
        return self._total() - self._start
