#!/usr/bin/env python3
"""Measure the CPU and memory of an agent that follows 10,000 OPC UA monitored items at 1 Hz.

The script starts three child processes on loopback:

- the OPC UA load server. By default it is ``opcua_load_server.js`` (node-opcua, run by
  Node.js) when Node.js and ``tests/support/node_opcua/node_modules`` are installed. Otherwise
  the script prints a note and runs ``opcua_load_server.py`` (asyncua), which delivers only
  about 1,000 of the 10,000 changes a second on two cores. ``--load-server`` chooses. Both
  serve ``--machines`` machine tools in the OPC 40001 ``Machines`` folder, each with
  ``--items-per-machine`` state variables (item state, operation mode, machine tool mode,
  active program and production jobs), every value changing once per ``--change-interval``
  seconds;
- a Mosquitto broker of its own (``tests/support/mosquitto.py``), unless ``--broker-url`` names one;
- the agent, as ``python -m kooperant agent run --config FILE`` with PYTHONPATH set to this
  checkout. Its generated config has one ``opcua`` adapter with a sampling interval of 500 ms
  and a publishing interval of 1000 ms, a description of every machine, a policy that shares every
  machine, ``publish_interval_seconds`` from ``--publish-interval`` and a temporary audit log.

Once the server reports every monitored item created, the script waits ``--warmup`` seconds and
then measures for ``--duration`` seconds:

- the agent's CPU time (user + system of all its threads, from psutil) divided by the wall
  time, in % of one core;
- its RSS, sampled every 0.5 s, and its peak (``VmHWM`` of ``/proc/PID/status``) at the end;
- the server's CPU, for context, and the data change notifications it sent per second.

When those notifications fall below 90 % of the configured rate, the CPU goal is reported as not
shown, because the agent had less work than the goal states. The script also subscribes to the
agent's offer topics and counts the offers received. With ``--profile FILE`` it records the
agent with ``py-spy record`` during the window.

Run from the repository root: ``.venv/bin/python bench/agent_footprint.py [--duration 180]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
import psutil

from kooperant.net import free_tcp_port
from tests.support.mosquitto import OwnMosquitto

REPO_ROOT = Path(__file__).resolve().parents[1]
ASYNCUA_SERVER = Path(__file__).resolve().with_name("opcua_load_server.py")
NODE_SERVER = Path(__file__).resolve().with_name("opcua_load_server.js")
NODE_OPCUA = REPO_ROOT / "tests" / "support" / "node_opcua"
# Below this share of the configured notification rate the CPU figure does not show the goal.
DELIVERED_SHARE_FOR_GOAL = 0.9
CLUSTER = "bench"
MEMBER = "footprint"
GOAL_CPU_PERCENT = 30.0
GOAL_RSS_MB = 150.0
RSS_SAMPLE_SECONDS = 0.5
SERVER_READY_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 20.0


class BenchError(RuntimeError):
    """Raised when a child process fails or the setup does not come up in time."""


@dataclass
class ServerLines:
    """The load server's stdout, read by a thread: the latest status and every line."""

    ready: threading.Event = field(default_factory=threading.Event)
    variables: int = 0
    monitored_items: int = 0
    writes: int = 0
    notifications: int = 0
    lines: list[str] = field(default_factory=list)

    def read(self, stream: Iterator[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip())
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            if line.startswith("ready"):
                self.variables = int(fields["variables"])
                self.ready.set()
            elif line.startswith("status"):
                self.monitored_items = int(fields["monitored_items"])
                self.writes = int(fields["writes"])
                self.notifications = int(fields["notifications"])


@dataclass
class OfferCounter:
    """Offers received on the agent's offer topics, with their receive times."""

    times: list[float] = field(default_factory=list)
    resources: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return
        with self.lock:
            self.times.append(time.monotonic())
            self.resources.add(message.topic.rsplit("/", 1)[-1])

    def between(self, start: float, end: float) -> list[float]:
        with self.lock:
            return [moment for moment in self.times if start <= moment < end]


def parse_arguments(arguments: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; a bad value exits with 2 and names the option and the value."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=500, help="Machines (resources).")
    parser.add_argument(
        "--items-per-machine",
        type=int,
        default=20,
        help="Monitored variables per machine, 1 to 40 (default 20: 10,000 items in all).",
    )
    parser.add_argument(
        "--change-interval", type=float, default=1.0, help="Seconds between value changes."
    )
    parser.add_argument(
        "--publish-interval",
        type=float,
        default=60.0,
        help="The agent's publish_interval_seconds: seconds between republishing every offer.",
    )
    parser.add_argument("--warmup", type=float, default=60.0, help="Seconds before measuring.")
    parser.add_argument("--duration", type=float, default=180.0, help="Seconds measured.")
    parser.add_argument(
        "--load-server",
        choices=("node", "asyncua"),
        default=None,
        help="OPC UA load server: node (node-opcua, the default when installed) or asyncua.",
    )
    parser.add_argument(
        "--broker-url",
        default=None,
        help="mqtt://HOST:PORT of a broker to use instead of starting Mosquitto.",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="Write a py-spy flame graph (SVG) here."
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temporary folder with the logs."
    )
    parsed = parser.parse_args(arguments)
    if not 1 <= parsed.machines <= 10_000:
        parser.error(f"invalid --machines {parsed.machines}: expected 1 to 10000")
    if not 1 <= parsed.items_per_machine <= 40:
        parser.error(f"invalid --items-per-machine {parsed.items_per_machine}: expected 1 to 40")
    for name in ("change_interval", "publish_interval", "duration"):
        value = getattr(parsed, name)
        if not value > 0:
            option = "--" + name.replace("_", "-")
            parser.error(f"invalid {option} {value}: expected a positive number of seconds")
    if not parsed.warmup >= 0:
        parser.error(f"invalid --warmup {parsed.warmup}: expected 0 or more seconds")
    if parsed.broker_url is not None and not parsed.broker_url.startswith("mqtt://"):
        parser.error(f"invalid --broker-url {parsed.broker_url!r}: expected mqtt://HOST:PORT")
    return parsed


def print_machine() -> None:
    """Print the CPU, Python and broker versions, as the first lines."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    print(f"machine: {os.cpu_count()} CPUs, {model}")
    print(f"python: {platform.python_version()}")
    mosquitto = shutil.which("mosquitto")
    if mosquitto is not None:
        version = subprocess.run(
            [mosquitto, "-h"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        print(f"mosquitto: {version[0] if version else 'unknown'}")
    from importlib.metadata import version as package_version

    print(f"asyncua: {package_version('asyncua')}, paho-mqtt: {package_version('paho-mqtt')}")
    node = shutil.which("node")
    if node is not None:
        node_version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(f"node: {node_version or 'unknown'}, node-opcua: {node_opcua_version() or 'missing'}")


def node_opcua_version() -> str | None:
    """Return the installed node-opcua version of tests/support/node_opcua, or None."""
    package = NODE_OPCUA / "node_modules" / "node-opcua" / "package.json"
    if not package.is_file():
        return None
    version = json.loads(package.read_text(encoding="utf-8")).get("version")
    return str(version) if version else None


def node_server_missing() -> str | None:
    """Return why the node-opcua load server cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js (node) is not on PATH"
    if (
        node_opcua_version() is None
        or not (NODE_OPCUA / "node_modules" / "node-opcua-nodesets").is_dir()
    ):
        return (
            f"node-opcua is not installed in {NODE_OPCUA / 'node_modules'}; install it with "
            "npm ci --prefix tests/support/node_opcua --no-audit --no-fund"
        )
    return None


def choose_load_server(requested: str | None) -> str:
    """Return ``node`` or ``asyncua``: the requested one, or node-opcua when it can run."""
    missing = node_server_missing()
    if requested == "node" and missing is not None:
        raise BenchError(f"--load-server node cannot run: {missing}")
    if requested is not None:
        return requested
    if missing is not None:
        print(
            f"note: using the asyncua load server, which delivers far fewer than 10,000 "
            f"notifications a second on two cores, because {missing}",
            flush=True,
        )
        return "asyncua"
    return "node"


def agent_config(folder: Path, arguments: argparse.Namespace, opcua_port: int, broker: str) -> Path:
    """Write agent.yaml and policy.yaml into ``folder`` and return the agent.yaml path."""
    status_port = free_tcp_port()
    resources = "\n".join(
        f"  machine-{number:04d}:\n"
        f"    name: Machine tool {number:04d}\n"
        f"    kind: machine\n"
        f"    capabilities: [cnc-milling, 5-axis-milling]"
        for number in range(1, arguments.machines + 1)
    )
    config = f"""\
member: {MEMBER}
cluster: {CLUSTER}
timezone: Europe/Warsaw
publish_interval_seconds: {arguments.publish_interval}
broker:
  url: {broker}
calendar:
  shifts:
    - {{days: [mon, tue, wed, thu, fri], start: "06:00", end: "14:00"}}
    - {{days: [mon, tue, wed, thu, fri], start: "14:00", end: "22:00"}}
policy: policy.yaml
audit_log: {folder / "kooperant-audit.db"}
status:
  enabled: true
  host: 127.0.0.1
  port: {status_port}
resources:
{resources}
adapters:
  - type: opcua
    name: load-server
    url: opc.tcp://127.0.0.1:{opcua_port}
    # Values that change once a second need no faster reporting than this. The adapter's
    # defaults (250 ms each) are set for the latency of a state change.
    sampling_interval_ms: 500
    publishing_interval_ms: 1000
    # The asyncua load server responds slowly while it writes 10,000 values a second, and a
    # request that times out, or a silent keep-alive, restarts the discovery of all machines.
    timeout_seconds: 30
    keepalive_seconds: 30
"""
    policy = """\
share:
  - kind: machine
    fields: [name, capabilities, state, state_since, horizon, free_hours, free_intervals]
"""
    (folder / "policy.yaml").write_text(policy, encoding="utf-8")
    path = folder / "agent.yaml"
    path.write_text(config, encoding="utf-8")
    return path


def child_environment() -> dict[str, str]:
    """Return the environment of the child processes, which run this checkout's code."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    return environment


@contextmanager
def child_process(
    command: list[str], log: Path | None, **options: object
) -> Iterator[psutil.Popen]:
    """Start ``command`` and stop it with SIGTERM (then SIGKILL) when the block ends."""
    with ExitStack() as stack:
        if log is not None:
            options.setdefault("stdout", stack.enter_context(log.open("w")))
            options.setdefault("stderr", subprocess.STDOUT)
        process = psutil.Popen(command, env=child_environment(), **options)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except psutil.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_TIMEOUT_SECONDS)


def start_load_server(
    stack: ExitStack, arguments: argparse.Namespace, port: int
) -> tuple[psutil.Popen, ServerLines]:
    if arguments.load_server == "node":
        program = [shutil.which("node") or "node", str(NODE_SERVER)]
    else:
        program = [sys.executable, str(ASYNCUA_SERVER)]
    command = [
        *program,
        "--port",
        str(port),
        "--machines",
        str(arguments.machines),
        "--items-per-machine",
        str(arguments.items_per_machine),
        "--interval",
        str(arguments.change_interval),
        "--report-seconds",
        "1",
    ]
    process = stack.enter_context(
        child_process(command, None, stdout=subprocess.PIPE, stderr=None, text=True)
    )
    lines = ServerLines()
    assert process.stdout is not None
    threading.Thread(target=lines.read, args=(process.stdout,), daemon=True).start()
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_SECONDS
    while not lines.ready.wait(0.5):
        if process.poll() is not None:
            raise BenchError(f"the OPC UA load server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(
                f"the OPC UA load server was not ready within {SERVER_READY_TIMEOUT_SECONDS} s"
            )
    return process, lines


def subscribe_offers(stack: ExitStack, broker: str, counter: OfferCounter) -> None:
    host, _, port = broker.removeprefix("mqtt://").partition(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"footprint-{os.getpid()}")
    client.on_message = counter.on_message
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(host, int(port or 1883))
    client.subscribe(f"kooperant/v1/{CLUSTER}/{MEMBER}/offers/+", qos=1)
    client.loop_start()
    stack.callback(client.loop_stop)
    stack.callback(client.disconnect)
    if not subscribed.wait(10):
        raise BenchError(f"no SUBACK from the broker at {broker} within 10 s")


def wait_for_items(lines: ServerLines, agent: psutil.Popen, expected: int, timeout: float) -> float:
    """Wait until the server reports ``expected`` monitored items; return the seconds it took."""
    started = time.monotonic()
    reported = -1
    while lines.monitored_items < expected:
        if agent.poll() is not None:
            raise BenchError(f"the agent exited with {agent.returncode}; see its log")
        if time.monotonic() - started > timeout:
            raise BenchError(
                f"the server has {lines.monitored_items} of {expected} monitored items after "
                f"{timeout:.0f} s"
            )
        if lines.monitored_items != reported:
            reported = lines.monitored_items
            print(f"  monitored items on the server: {reported}", flush=True)
        time.sleep(0.5)
    return time.monotonic() - started


@dataclass
class Measurement:
    """The figures of the measured window."""

    seconds: float
    agent_cpu_percent: float
    server_cpu_percent: float
    rss_samples_mb: list[float]
    peak_rss_mb: float
    offers: int
    value_changes_per_second: float
    notifications_per_second: float
    fewest_monitored_items: int


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def peak_rss_mb(pid: int) -> float:
    """Return VmHWM, the peak resident set size of the process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


def measure(
    agent: psutil.Popen,
    server: psutil.Popen,
    lines: ServerLines,
    counter: OfferCounter,
    seconds: float,
) -> Measurement:
    started = time.monotonic()
    writes = lines.writes
    notifications = lines.notifications
    agent_cpu = cpu_seconds(agent)
    server_cpu = cpu_seconds(server)
    samples: list[float] = []
    fewest_items = lines.monitored_items
    deadline = started + seconds
    next_report = started + 30
    while (now := time.monotonic()) < deadline:
        if agent.poll() is not None:
            raise BenchError(f"the agent exited with {agent.returncode} while measured")
        samples.append(agent.memory_info().rss / 1e6)
        fewest_items = min(fewest_items, lines.monitored_items)
        if now >= next_report:
            next_report += 30
            print(f"  measured {now - started:.0f} s, agent rss {samples[-1]:.1f} MB", flush=True)
        time.sleep(min(RSS_SAMPLE_SECONDS, max(0.0, deadline - now)))
    ended = time.monotonic()
    wall = ended - started
    return Measurement(
        seconds=wall,
        agent_cpu_percent=100 * (cpu_seconds(agent) - agent_cpu) / wall,
        server_cpu_percent=100 * (cpu_seconds(server) - server_cpu) / wall,
        rss_samples_mb=samples,
        peak_rss_mb=peak_rss_mb(agent.pid),
        offers=len(counter.between(started, ended)),
        # The server reports its count every second, so this is exact to one round.
        value_changes_per_second=(lines.writes - writes) / wall,
        notifications_per_second=(lines.notifications - notifications) / wall,
        fewest_monitored_items=min(fewest_items, lines.monitored_items),
    )


@contextmanager
def profiler(pid: int, output: Path | None, seconds: float) -> Iterator[None]:
    """Record the agent with py-spy while the block runs, when ``output`` is given."""
    if output is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--nonblocking", "--output", str(output)]
    command += ["--duration", str(int(seconds)), "--rate", "50"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        try:
            _, errors = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        if process.returncode != 0:
            print(f"py-spy failed ({process.returncode}): {errors.decode(errors='replace')}")
        else:
            print(f"profile written to {output}")


def cpu_goal_verdict(cpu_percent: float, delivered: float) -> str:
    """Return the CPU goal's verdict, given the share of the configured notifications delivered.

    A CPU-starved server writes fewer values, so below ``DELIVERED_SHARE_FOR_GOAL`` the agent had
    less work than the goal states and its CPU figure shows neither a met nor a missed goal.
    """
    if delivered < DELIVERED_SHARE_FOR_GOAL:
        return f"not shown (only {100 * delivered:.0f} % of the notification rate)"
    return "met" if cpu_percent <= GOAL_CPU_PERCENT else "NOT MET"


def run(arguments: argparse.Namespace) -> int:
    print_machine()
    arguments.load_server = choose_load_server(arguments.load_server)
    print(f"load server: {arguments.load_server}", flush=True)
    expected_items = arguments.machines * arguments.items_per_machine
    print(
        f"setup: {arguments.machines} machines x {arguments.items_per_machine} items = "
        f"{expected_items} monitored items, changing every {arguments.change_interval} s; "
        f"republish every {arguments.publish_interval} s; warm-up {arguments.warmup} s, "
        f"measured {arguments.duration} s",
        flush=True,
    )
    folder = Path(tempfile.mkdtemp(prefix="kooperant-footprint-"))
    try:
        with ExitStack() as stack:
            broker = arguments.broker_url
            if broker is None:
                (folder / "mosquitto").mkdir()
                mosquitto = OwnMosquitto(folder / "mosquitto")
                mosquitto.start()
                stack.callback(mosquitto.stop)
                broker = mosquitto.url
            opcua_port = free_tcp_port()
            started = time.monotonic()
            server, lines = start_load_server(stack, arguments, opcua_port)
            print(
                f"load server ready in {time.monotonic() - started:.1f} s with "
                f"{lines.variables} variables",
                flush=True,
            )
            if lines.variables != expected_items:
                raise BenchError(
                    f"the server has {lines.variables} variables, not {expected_items}"
                )
            counter = OfferCounter()
            subscribe_offers(stack, broker, counter)

            config = agent_config(folder, arguments, opcua_port, broker)
            command = [sys.executable, "-m", "kooperant", "agent", "run", "--config", str(config)]
            agent = stack.enter_context(child_process(command, folder / "agent.log"))
            print(f"agent started (pid {agent.pid})", flush=True)
            took = wait_for_items(lines, agent, expected_items, SERVER_READY_TIMEOUT_SECONDS)
            print(f"agent monitors {lines.monitored_items} items after {took:.1f} s", flush=True)

            time.sleep(arguments.warmup)
            print(f"measuring for {arguments.duration:.0f} s", flush=True)
            with profiler(agent.pid, arguments.profile, arguments.duration):
                result = measure(agent, server, lines, counter, arguments.duration)
            resources = len(counter.resources)
            if result.fewest_monitored_items < expected_items:
                # The agent lost its subscription, so it was not under the load measured.
                raise BenchError(
                    f"the server had only {result.fewest_monitored_items} of {expected_items} "
                    "monitored items during the window; the agent reconnected, see its log"
                )
    except BenchError:
        log = folder / "agent.log"
        if log.exists():
            print("last lines of the agent's log:", file=sys.stderr)
            for line in log.read_text(errors="replace").splitlines()[-20:]:
                print(f"  {line}", file=sys.stderr)
        raise
    finally:
        if arguments.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    per_minute = result.offers * 60 / result.seconds
    mean_rss = sum(result.rss_samples_mb) / max(1, len(result.rss_samples_mb))
    print(f"resources with offers: {resources}")
    print(f"offers in the window: {result.offers} in {result.seconds:.1f} s")
    print(f"agent mean rss: {mean_rss:.1f} MB")
    print(f"value changes on the server: {result.value_changes_per_second:.0f} per second")
    print(f"notifications sent by the server: {result.notifications_per_second:.0f} per second")
    print(f"opcua server cpu: {result.server_cpu_percent:.1f} % of one core")
    if result.notifications_per_second > 0:
        per_thousand = result.agent_cpu_percent * 1000 / result.notifications_per_second
        print(f"agent cpu per 1000 notifications a second: {per_thousand:.2f} % of one core")
    target = expected_items / arguments.change_interval
    delivered = result.notifications_per_second / target
    print(
        f"notification rate achieved: {result.notifications_per_second:.0f} per second, "
        f"{100 * delivered:.0f} % of the configured {target:.0f}"
    )
    if delivered < DELIVERED_SHARE_FOR_GOAL:
        print(
            f"warning: the server sent {result.notifications_per_second:.0f} notifications a "
            f"second, not {target:.0f}; the cpu figure is for that load"
        )
    print(f"agent cpu: {result.agent_cpu_percent:.1f} % of one core")
    print(f"agent peak rss: {result.peak_rss_mb:.1f} MB")
    print(f"offers published per minute: {per_minute:.0f}")
    print(f"monitored items: {result.fewest_monitored_items}")
    rss_met = result.peak_rss_mb <= GOAL_RSS_MB
    cpu_verdict = cpu_goal_verdict(result.agent_cpu_percent, delivered)
    print(f"goal cpu <= {GOAL_CPU_PERCENT:.0f} %: {cpu_verdict}")
    print(f"goal rss <= {GOAL_RSS_MB:.0f} MB: {'met' if rss_met else 'NOT MET'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        return run(arguments)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
