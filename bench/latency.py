#!/usr/bin/env python3
"""Measure how long a machine state change takes to become visible in the aggregator's API.

The script starts each of these in a child process:

- an OPC UA server with the three machines of the demo's machine park
  (``kooperant.demo.machine_park``, OPC 40001 Machinery);
- a Mosquitto broker of its own, unless ``--broker`` names one;
- ``kooperant server run`` on SQLite, or on a throwaway PostgreSQL database with
  ``--database-url``;
- ``kooperant agent run`` with a policy that shares the machines' state without
  ``delay_minutes``.

Then, for each sample, it waits a random time, changes one machine's state on the OPC UA server
and polls ``GET /api/v1/resources/{cluster}/{member}/
{resource}`` (one request at a time, every ``--poll-ms``) until the offer shows the new state.

asyncua's server reports a written value at its next publishing interval and ignores the
sampling interval a client requests. A real server samples its source at that interval, so by
default the OPC UA child emulates it: a state change is written to the address space after a
random delay of 0 to ``sampling_interval_ms``, the wait for the next tick of a sampling clock of
unknown phase (``--server-sampling none`` writes at once).

The children's own loggers (``adapters``, ``agent``, ``server``, ``kooperant``) log at DEBUG to
JSON files, and the script reads the time of each hop from them: the OPC UA notification in the
agent, the broker's PUBACK of the offer, the offer stored by ingest. A subscriber of the script
on the broker adds the time the broker delivered the offer. It prints p50, p95 and max of each
hop and of the whole path, with the goal p95 <= 1000 ms on the last line.

Run from the repository root: ``.venv/bin/python bench/latency.py [--samples 100]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bench.databases import bench_database
from bench.machine import cpu_model
from kooperant.demo.machine_park import PARK_MACHINES
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.mosquitto import OwnMosquitto

REPO_ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 1000.0
CLUSTER = "bench"
MEMBER = "latency"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 5.0
# The states a sample switches between. Unknown and NotAvailable tell a customer nothing useful.
STATES = (MachineState.EXECUTING, MachineState.NOT_EXECUTING, MachineState.OUT_OF_SERVICE)
RESOURCES = {machine.browse_name: machine.browse_name.lower() for machine in PARK_MACHINES}
# The children's loggers set to DEBUG for the hop times. Libraries stay at INFO.
TRACED_LOGGERS = ("adapters", "agent", "server", "kooperant")


# --- the OPC UA server child ------------------------------------------------------------------

OPCUA_CHILD = textwrap.dedent(
    """
    import asyncio, logging, random, sys, threading, time
    from kooperant.demo.machine_park import MachinePark
    from kooperant.protocol import MachineState

    SAMPLING = float(sys.argv[1]) / 1000.0
    # asyncua warns that the server has no certificate, but the agent connects without security.
    logging.basicConfig(level=logging.ERROR)

    async def main():
        loop = asyncio.get_running_loop()
        commands = asyncio.Queue()

        def read_stdin():
            for line in sys.stdin:
                loop.call_soon_threadsafe(commands.put_nowait, (time.time(), line.split()))
            loop.call_soon_threadsafe(commands.put_nowait, (time.time(), ["quit"]))

        # The simulation of the park is switched off, so only commands change a state.
        async with MachinePark(port=0, change_interval_seconds=1e9) as park:
            print("ready", park.endpoint, flush=True)
            threading.Thread(target=read_stdin, daemon=True).start()
            while True:
                received, words = await commands.get()
                if words[0] == "quit":
                    return
                machine, state = words[1], MachineState(words[2])
                if SAMPLING > 0:
                    # The next tick of a sampling clock whose phase is unknown, so drawn anew.
                    tick = received + random.uniform(0, SAMPLING)
                    await asyncio.sleep(max(0.0, tick - time.time()))
                await park.set_state(machine, state)
                written = time.time()
                print("changed", machine, state.value, repr(received), repr(written), flush=True)

    asyncio.run(main())
    """
)

# Runs a kooperant command with the project's loggers at DEBUG and the libraries' at INFO.
TRACED_CLI = textwrap.dedent(
    f"""
    import logging, sys
    import kooperant.cli as cli

    configure = cli.configure_logging

    def traced(**options):
        configure(**options)
        for name in {TRACED_LOGGERS!r}:
            logging.getLogger(name).setLevel(logging.DEBUG)

    cli.configure_logging = traced
    sys.argv = ["kooperant", *sys.argv[1:]]
    cli.main()
    """
)


class OpcUaServer:
    """The OPC UA child: ``change`` requests a state and ``wait_changed`` reads the result."""

    def __init__(self, process: subprocess.Popen[str], endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def change(self, machine: str, state: MachineState) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"set {machine} {state.value}\n")
        self.process.stdin.flush()

    def wait_changed(self, timeout: float) -> tuple[float, float]:
        """Return the epoch times the change was received and written to the address space."""
        line = self._lines.get(timeout=timeout)
        words = line.split()
        if words[0] != "changed":
            raise RuntimeError(f"unexpected line from the OPC UA server: {line!r}")
        return float(words[3]), float(words[4])


# --- the broker subscriber --------------------------------------------------------------------


class OfferWatch:
    """A subscriber of the script on the broker that records when each offer state arrives."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self._lock = threading.Lock()
        self._arrivals: list[tuple[float, str, str]] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="")
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.subscribe(topic_filter, qos=0)
        self._client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrived = time.time()
        if not message.payload:
            return
        state = json.loads(message.payload).get("state")
        resource = message.topic.rsplit("/", 1)[-1]
        with self._lock:
            self._arrivals.append((arrived, resource, str(state)))

    def first_after(self, moment: float, resource: str, state: str) -> float | None:
        with self._lock:
            for arrived, seen_resource, seen_state in self._arrivals:
                if arrived >= moment and seen_resource == resource and seen_state == state:
                    return arrived
        return None

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


# --- log reading ------------------------------------------------------------------------------


@dataclass
class LogEvents:
    """The hop events of the children's JSON log files, as (epoch time, message)."""

    path: Path
    events: list[tuple[float, str]] = field(default_factory=list)
    _offset: int = 0

    def refresh(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as log:
            log.seek(self._offset)
            for line in log:
                if not line.endswith("\n"):
                    break
                self._offset += len(line.encode("utf-8"))
                record = json.loads(line)
                moment = datetime.fromisoformat(record["time"]).timestamp()
                self.events.append((moment, record["message"]))

    def first_after(self, moment: float, *parts: str) -> float | None:
        for logged, message in self.events:
            # Log times are cut to the millisecond, so an event may show up to 1 ms early.
            if logged >= moment - 0.001 and all(part in message for part in parts):
                return logged
        return None


# --- one sample -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The epoch times of one state change along its path, ``None`` where no record was found."""

    machine: str
    state: str
    changed: float
    written: float
    visible: float | None
    notified: float | None = None
    published: float | None = None
    delivered: float | None = None
    stored: float | None = None


HOPS = (
    ("server sampling (change to value written)", "changed", "written"),
    ("OPC UA notification in the agent", "written", "notified"),
    ("agent cycle, outbox and PUBACK", "notified", "published"),
    ("broker to the script's subscriber", "published", "delivered"),
    ("broker to ingest stored", "published", "stored"),
    ("stored to visible in the API", "stored", "visible"),
)


def hop_ms(sample: Sample, start: str, end: str) -> float | None:
    first: float | None = getattr(sample, start)
    last: float | None = getattr(sample, end)
    if first is None or last is None:
        return None
    return (last - first) * 1000.0


# --- processes --------------------------------------------------------------------------------


def child_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["KOOPERANT_LANG"] = "en"
    return environment


def start_opcua(sampling_ms: float) -> OpcUaServer:
    process = subprocess.Popen(
        [sys.executable, "-c", OPCUA_CHILD, str(sampling_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_environment(),
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready "):
        stop_process(process)
        raise RuntimeError(f"the OPC UA server did not start; it printed {line!r}")
    return OpcUaServer(process, line.split()[1])


def start_kooperant(arguments: Sequence[str], log_file: Path, trace: bool) -> subprocess.Popen[str]:
    options = ["--log-format", "json", "--log-file", str(log_file)]
    if trace:
        command = [sys.executable, "-c", TRACED_CLI, *options, *arguments]
    else:
        command = [sys.executable, "-m", "kooperant", *options, *arguments]
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(),
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_agent_files(
    folder: Path, broker_url: str, opcua_url: str, args: argparse.Namespace
) -> Path:
    resources = "".join(
        f"  {resource}:\n    name: {machine}\n    kind: machine\n    capabilities: [milling]\n"
        for machine, resource in RESOURCES.items()
    )
    rules = "".join(
        f"  - resource: {resource}\n"
        "    fields: [name, capabilities, state, state_since, horizon, free_hours, "
        "free_intervals]\n"
        for resource in RESOURCES.values()
    )
    (folder / "policy.yaml").write_text(
        "# No delay_minutes: states leave at once.\nshare:\n" + rules
    )
    config = folder / "agent.yaml"
    config.write_text(
        f"member: {MEMBER}\n"
        f"cluster: {args.cluster}\n"
        "timezone: Europe/Warsaw\n"
        "broker:\n"
        f"  url: {broker_url}\n"
        f"  client_id: kooperant-agent-{args.cluster}-{MEMBER}\n"
        "calendar:\n"
        "  shifts:\n"
        "    - {days: [mon, tue, wed, thu, fri, sat, sun], start: '06:00', end: '22:00'}\n"
        "policy: policy.yaml\n"
        f"audit_log: {folder / 'audit.db'}\n"
        "status:\n"
        "  enabled: false\n"
        f"resources:\n{resources}"
        "adapters:\n"
        "  - type: opcua\n"
        "    name: bench-opcua\n"
        f"    url: {opcua_url}\n" + _interval_lines(args)
    )
    return config


def _interval_lines(args: argparse.Namespace) -> str:
    lines = ""
    if args.sampling_ms is not None:
        lines += f"    sampling_interval_ms: {args.sampling_ms}\n"
    if args.publishing_ms is not None:
        lines += f"    publishing_interval_ms: {args.publishing_ms}\n"
    return lines


def configured_intervals(args: argparse.Namespace) -> tuple[float, float]:
    """Return the agent's sampling and publishing intervals: the options or the defaults."""
    from adapters.opcua.settings import OpcUaSettings

    fields = OpcUaSettings.model_fields
    sampling = args.sampling_ms
    publishing = args.publishing_ms
    if sampling is None:
        sampling = float(fields["sampling_interval_ms"].default)
    if publishing is None:
        publishing = float(fields["publishing_interval_ms"].default)
    return sampling, publishing


# --- machine ----------------------------------------------------------------------------------


def print_machine(database: str) -> None:
    print(f"cpus: {os.cpu_count()} {cpu_model()}")
    print(f"python: {platform.python_version()} ({sys.executable})")
    print(f"mosquitto: {program_version(['mosquitto', '-h'])}")
    if database.startswith("postgresql"):
        print(f"postgresql: {program_version(['psql', '--version'])}")
    else:
        import sqlite3

        print(f"sqlite: {sqlite3.sqlite_version}")


def program_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip().splitlines()
    return output[0] if output else "unknown"


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    folder: Path
    database: str
    rng: random.Random
    stack: contextlib.ExitStack
    samples: list[Sample] = field(default_factory=list)
    timeouts: int = 0
    idle_cpu: dict[str, float] = field(default_factory=dict)
    request_ms: list[float] = field(default_factory=list)
    """The duration of each API request while polling."""

    def run(self) -> None:
        args = self.args
        broker_host, broker_port = self.start_broker()
        sampling_ms, publishing_ms = configured_intervals(args)
        emulated = sampling_ms if args.server_sampling == "emulate" else 0.0
        opcua = start_opcua(emulated)
        self.stack.callback(stop_process, opcua.process)
        print(f"OPC UA server: {opcua.endpoint}")

        http_port = free_tcp_port()
        server_log = LogEvents(self.folder / "server.log")
        server = start_kooperant(
            [
                "server",
                "run",
                "--database",
                self.database,
                "--broker",
                f"mqtt://{broker_host}:{broker_port}",
                "--cluster",
                args.cluster,
                "--client-id",
                f"kooperant-aggregator-{args.cluster}",
                "--port",
                str(http_port),
            ],
            server_log.path,
            args.trace,
        )
        self.stack.callback(stop_process, server)
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{http_port}", timeout=REQUEST_TIMEOUT_SECONDS
        )
        self.stack.callback(api.close)
        wait_for_http(api, server)

        watch = OfferWatch(broker_host, broker_port, f"kooperant/v1/{args.cluster}/+/offers/#")
        self.stack.callback(watch.close)

        config = write_agent_files(
            self.folder, f"mqtt://{broker_host}:{broker_port}", opcua.endpoint, args
        )
        agent_log = LogEvents(self.folder / "agent.log")
        agent = start_kooperant(
            ["agent", "run", "--config", str(config)], agent_log.path, args.trace
        )
        self.stack.callback(stop_process, agent)
        current = self.wait_for_offers(api, agent)
        print(
            f"agent and server ready; sampling_interval_ms {sampling_ms:g}, "
            f"publishing_interval_ms {publishing_ms:g}, server sampling {args.server_sampling}"
        )

        self.idle_cpu = idle_cpu_percent(
            {"agent": agent.pid, "OPC UA server": opcua.process.pid}, args.idle_seconds
        )
        started = time.monotonic()
        for number in range(1, args.samples + 1):
            time.sleep(self.rng.uniform(args.min_gap, args.max_gap))
            machine = self.rng.choice(sorted(RESOURCES))
            state = self.rng.choice([s for s in STATES if s.value != current[machine]])
            sample = self.measure(api, opcua, machine, state)
            if sample.visible is None:
                self.timeouts += 1
                print(
                    f"sample {number}: {machine} {state.value} not visible within {args.timeout} s"
                )
                # The state may still arrive; read it back before the next change.
                current[machine] = self.offer_state(api, machine) or current[machine]
            else:
                current[machine] = state.value
            self.samples.append(sample)
            if number % 10 == 0 or number == args.samples:
                print(f"{number} samples, {time.monotonic() - started:.0f} s")

        agent_log.refresh()
        server_log.refresh()
        self.samples = [self.with_hops(s, agent_log, server_log, watch) for s in self.samples]
        self.report(sampling_ms, publishing_ms)

    def start_broker(self) -> tuple[str, int]:
        if self.args.broker is not None:
            address = self.args.broker.removeprefix("mqtt://")
            host, _, port = address.partition(":")
            return host, int(port or 1883)
        broker = OwnMosquitto(self.folder)
        broker.start()
        self.stack.callback(broker.stop)
        return "127.0.0.1", broker.port

    def measure(
        self, api: httpx.Client, opcua: OpcUaServer, machine: str, state: MachineState
    ) -> Sample:
        resource = RESOURCES[machine]
        opcua.change(machine, state)
        deadline = time.monotonic() + self.args.timeout
        visible = None
        while time.monotonic() < deadline:
            poll_started = time.monotonic()
            shown = self.offer_state(api, machine)
            self.request_ms.append((time.monotonic() - poll_started) * 1000.0)
            if shown == state.value:
                visible = time.time()
                break
            time.sleep(max(0.0, self.args.poll_ms / 1000.0 - (time.monotonic() - poll_started)))
        changed, written = opcua.wait_changed(timeout=self.args.timeout)
        return Sample(resource, state.value, changed, written, visible)

    def offer_state(self, api: httpx.Client, machine: str) -> str | None:
        path = f"/api/v1/resources/{self.args.cluster}/{MEMBER}/{RESOURCES[machine]}"
        response = api.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        state = response.json().get("state")
        return None if state is None else str(state)

    def wait_for_offers(self, api: httpx.Client, agent: subprocess.Popen[str]) -> dict[str, str]:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if agent.poll() is not None:
                raise RuntimeError(
                    f"the agent exited with status {agent.returncode}{stderr_tail(agent)}"
                )
            states = {machine: self.offer_state(api, machine) for machine in RESOURCES}
            if all(states.values()):
                return {machine: str(state) for machine, state in states.items()}
            time.sleep(0.2)
        raise TimeoutError(
            f"the offers of {sorted(RESOURCES.values())} did not appear in the API within "
            f"{START_TIMEOUT_SECONDS:g} s; see {self.folder / 'agent.log'}"
        )

    def with_hops(
        self, sample: Sample, agent_log: LogEvents, server_log: LogEvents, watch: OfferWatch
    ) -> Sample:
        topic = f"offers/{sample.machine}"
        notified = agent_log.first_after(sample.written, f"{sample.machine} is {sample.state}")
        published = agent_log.first_after(notified or sample.written, "Published", topic)
        return Sample(
            sample.machine,
            sample.state,
            sample.changed,
            sample.written,
            sample.visible,
            notified=notified,
            published=published,
            delivered=watch.first_after(sample.written, sample.machine, sample.state),
            # Ingest may log before the agent logs the PUBACK, so the search starts earlier.
            stored=server_log.first_after(notified or sample.written, "Stored offer", topic),
        )

    def report(self, sampling_ms: float, publishing_ms: float) -> None:
        print()
        print("hop breakdown (ms):")
        for name, start, end in HOPS:
            values = [v for v in (hop_ms(s, start, end) for s in self.samples) if v is not None]
            print(f"  {name:44} {summary(values)}")
        print(f"  {'one API request while polling':44} {summary(self.request_ms)}")
        totals = [hop_ms(s, "changed", "visible") for s in self.samples]
        latencies = [v for v in totals if v is not None]
        p95 = percentile(latencies, 95) if latencies else math.inf
        met = p95 <= GOAL_MS and self.timeouts == 0
        print()
        for name, percent in self.idle_cpu.items():
            print(f"{name} CPU while idle: {percent:.2f} % of one core")
        print(f"sampling_interval_ms: {sampling_ms:g}")
        print(f"publishing_interval_ms: {publishing_ms:g}")
        print(f"server sampling: {self.args.server_sampling}")
        print(f"samples: {len(latencies)}")
        print(f"timeouts: {self.timeouts}")
        print(f"p50: {percentile(latencies, 50):.0f} ms" if latencies else "p50: n/a")
        print(f"p95: {p95:.0f} ms" if latencies else "p95: n/a")
        print(f"max: {max(latencies):.0f} ms" if latencies else "max: n/a")
        print(f"goal p95 <= {GOAL_MS:.0f} ms: {'met' if met else 'NOT MET'}")


def idle_cpu_percent(processes: dict[str, int], seconds: float) -> dict[str, float]:
    """Return the CPU time each process used over ``seconds`` of no changes, in % of one core."""
    if seconds <= 0:
        return {}
    print(f"measuring CPU while idle for {seconds:g} s")
    handles = {name: psutil.Process(pid) for name, pid in processes.items()}
    before = {name: sum(handle.cpu_times()[:2]) for name, handle in handles.items()}
    time.sleep(seconds)
    return {
        name: (sum(handle.cpu_times()[:2]) - before[name]) / seconds * 100.0
        for name, handle in handles.items()
    }


def summary(values: list[float]) -> str:
    if not values:
        return "no records"
    return (
        f"p50 {percentile(values, 50):7.1f}  p95 {percentile(values, 95):7.1f}  "
        f"max {max(values):7.1f}  n={len(values)}"
    )


def percentile(values: Sequence[float], share: float) -> float:
    """Return the ``share`` percentile, interpolated between the closest ranks."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(share) - 1]


def wait_for_http(api: httpx.Client, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"the server exited with status {server.returncode}{stderr_tail(server)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if api.get("/healthz").status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the server did not respond to /healthz within {START_TIMEOUT_SECONDS:g} s")


def stderr_tail(process: subprocess.Popen[str]) -> str:
    stream: IO[str] | None = process.stderr
    text = stream.read() if stream is not None else ""
    return f"; it printed:\n{text[-2000:]}" if text else ""


# --- options ----------------------------------------------------------------------------------


def positive_int(option: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"invalid {option} value {text!r}: use a whole number of 1 or more"
            )
        return value

    return parse


def positive_float(option: str, *, allow_zero: bool = False) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            lowest = "0 or more" if allow_zero else "greater than 0"
            raise argparse.ArgumentTypeError(
                f"invalid {option} value {text!r}: use a number {lowest}"
            )
        return value

    return parse


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Latency from a machine state change on the OPC UA server to the API.",
    )
    parser.add_argument(
        "--samples",
        type=positive_int("--samples"),
        default=100,
        help="state changes to measure (default 100)",
    )
    parser.add_argument(
        "--min-gap",
        type=positive_float("--min-gap"),
        default=0.5,
        help="minimum wait before a change, s (default 0.5)",
    )
    parser.add_argument(
        "--max-gap",
        type=positive_float("--max-gap"),
        default=1.5,
        help="maximum wait before a change, s (default 1.5)",
    )
    parser.add_argument(
        "--poll-ms",
        type=positive_float("--poll-ms"),
        default=15.0,
        help="API poll interval, ms (default 15)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float("--timeout"),
        default=10.0,
        help="maximum wait for one change to show, s (default 10)",
    )
    parser.add_argument(
        "--sampling-ms",
        type=positive_float("--sampling-ms", allow_zero=True),
        default=None,
        help="the agent's sampling_interval_ms (default: the adapter's default)",
    )
    parser.add_argument(
        "--publishing-ms",
        type=positive_float("--publishing-ms"),
        default=None,
        help="the agent's publishing_interval_ms (default: the adapter's default)",
    )
    parser.add_argument(
        "--server-sampling",
        choices=("emulate", "none"),
        default="emulate",
        help="write a change at the next sampling tick (emulate, default) or at once (none)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server for a throwaway database (default: SQLite in a temporary folder)",
    )
    parser.add_argument(
        "--broker",
        default=None,
        help="an MQTT broker mqtt://HOST:PORT to use instead of a Mosquitto of the script's own",
    )
    parser.add_argument(
        "--cluster",
        default=CLUSTER,
        help=f"cluster id of the agent and the server (default {CLUSTER})",
    )
    parser.add_argument(
        "--no-trace",
        dest="trace",
        action="store_false",
        help="leave the children's logs at INFO, without a hop breakdown",
    )
    parser.add_argument(
        "--idle-seconds",
        type=positive_float("--idle-seconds", allow_zero=True),
        default=30.0,
        help="seconds without changes to measure the agent's and server's CPU use (default 30)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the waits and the states")
    args = parser.parse_args(argv)
    if args.max_gap < args.min_gap:
        parser.error(
            f"invalid --max-gap value {args.max_gap:g}: it is below --min-gap {args.min_gap:g}"
        )
    if args.database_url is not None:
        try:
            url = make_url(args.database_url)
        except ArgumentError:
            parser.error(
                f"invalid --database-url value {args.database_url!r}: expected postgresql://..."
            )
        if not url.drivername.startswith("postgresql"):
            parser.error(
                f"invalid --database-url value {args.database_url!r}: expected postgresql://..."
            )
    if args.broker is not None and not args.broker.startswith("mqtt://"):
        parser.error(f"invalid --broker value {args.broker!r}: expected mqtt://HOST:PORT")
    return args


@contextlib.contextmanager
def database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    if args.database_url is None:
        yield f"sqlite:///{folder / 'server.db'}"
        return
    with bench_database(make_url(args.database_url), keep=False) as url:
        yield url


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_options(argv)
    rng = random.Random(args.seed)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kooperant-latency-")))
        url = stack.enter_context(database(args, folder))
        print_machine(url)
        bench = Bench(args, folder, url, rng, stack)
        try:
            bench.run()
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
