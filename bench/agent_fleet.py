"""Several simulated agents in one process, for bench/replay.py.

Each agent is the agent's own publishing path without adapters and policy. It has an
``Outbox`` and an ``AuditLog`` in an SQLite file of its own, a ``RequestInbox``, and a
``Publisher`` with its own client id and MQTT session. The publisher queues offers in the
outbox and forwards them with the agent's ``Forwarder`` and reconnect backoff. Every
``--interval-seconds`` each agent hands the publisher a new set of machine offers with
``full=True``, as the agent's run loop does on its periodic republish. Each offer's free time
starts at the moment of the cycle, so every cycle changes every offer. The outbox therefore
queues one message per resource and cycle, as a real agent does every minute while the clock runs
through working hours. The agents start spread over one interval, so their cycles are not in step.

The process writes JSON lines on stdout, flushed every ``FLUSH_SECONDS``:

- ``{"event": "ready", "pid": N}`` once every agent runs;
- ``{"event": "connected", "agent": I, "time": T}`` and ``{"event": "disconnected", ...}``
  when an agent's connection state changes (checked every ``WATCH_SECONDS``);
- ``{"event": "delivered", "agent": I, "message_id": ID, "time": T}`` for each offer the
  broker acknowledged, written in ``Outbox.delivered`` after its transaction;
- ``{"event": "stopped", "agent": I, "failed_attempts": N}`` at the end.

Times are Unix seconds. SIGTERM or SIGINT stops every agent cleanly.

Run: ``python -m bench.agent_fleet --folder DIR --broker-url URL --first 0 --count 25``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.audit import AuditLog
from agent.config import BrokerSettings
from agent.outbox import Outbox, QueuedMessage
from agent.publisher import Publisher
from agent.request_inbox import RequestInbox
from agent.requests import RequestStore
from kooperant.intervals import Interval
from kooperant.protocol import MachineState, Offer, ResourceKind

FLUSH_SECONDS = 0.2
WATCH_SECONDS = 0.05
HORIZON_DAYS = 14
SHIFT_START_HOUR = 6
SHIFT_END_HOUR = 22
CAPABILITIES = ("milling", "turning", "grinding", "welding", "laser-cutting", "bending")


def member_id(index: int) -> str:
    """Return the member id of agent ``index``."""
    return f"bench-agent-{index:03d}"


def audit_log_path(folder: Path, index: int) -> Path:
    """Return the SQLite file (audit log and outbox) of agent ``index`` in ``folder``."""
    return folder / member_id(index) / "audit.db"


class EventWriter:
    """JSON lines for stdout, collected and written together every ``FLUSH_SECONDS``."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def emit(self, event: str, **fields: Any) -> None:
        self._lines.append(json.dumps({"event": event, **fields}))

    def flush(self) -> None:
        if self._lines:
            sys.stdout.write("\n".join(self._lines) + "\n")
            sys.stdout.flush()
            self._lines.clear()

    async def flush_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.flush()
            await asyncio.sleep(FLUSH_SECONDS)
        self.flush()


class RecordingOutbox(Outbox):
    """The agent's outbox, which also reports every delivered offer with its message id."""

    def __init__(self, path: Path, agent: int, events: EventWriter) -> None:
        super().__init__(path)
        self._agent = agent
        self._events = events

    def delivered(self, message: QueuedMessage, published_at: datetime) -> Any:
        record = super().delivered(message, published_at)
        if message.kind == "offer" and message.payload:
            self._events.emit(
                "delivered", agent=self._agent, message_id=message.message_id, time=time.time()
            )
        return record


@dataclass(frozen=True)
class FleetSettings:
    """The settings shared by every agent of the process; ``parse_arguments`` explains each."""

    folder: Path
    broker_url: str
    cluster: str
    resources: int
    interval_seconds: float
    reconnect_min_seconds: float
    reconnect_max_seconds: float


def machine_offers(settings: FleetSettings, member: str, now: datetime) -> list[Offer]:
    """Return the machine offers of ``member`` at ``now``: free from now, then on every shift."""
    intervals = list(_free_intervals(now))
    free_hours = sum((item.end - item.start).total_seconds() for item in intervals) / 3600
    horizon = Interval(now, now + timedelta(days=HORIZON_DAYS))
    return [
        Offer(
            cluster=settings.cluster,
            member=member,
            resource=f"machine-{number:02d}",
            kind=ResourceKind.MACHINE,
            generated_at=now,
            name=f"Machine {number} of {member}",
            capabilities=(CAPABILITIES[number % len(CAPABILITIES)],),
            state=MachineState.NOT_EXECUTING,
            state_since=now,
            horizon=horizon,
            free_hours=free_hours,
            free_intervals=tuple(intervals),
        )
        for number in range(settings.resources)
    ]


def _free_intervals(now: datetime) -> Iterator[Interval]:
    # The first interval starts now, so the offer changes with every cycle.
    today_end = now.replace(hour=SHIFT_END_HOUR, minute=0, second=0, microsecond=0)
    yield Interval(now, max(today_end, now + timedelta(hours=1)))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(1, HORIZON_DAYS):
        start = midnight + timedelta(days=day, hours=SHIFT_START_HOUR)
        yield Interval(start, start.replace(hour=SHIFT_END_HOUR))


class SimulatedAgent:
    """One member's publisher, outbox and request inbox, given new offers every interval."""

    def __init__(self, settings: FleetSettings, index: int, events: EventWriter) -> None:
        self.settings = settings
        self.index = index
        self.member = member_id(index)
        self._events = events
        path = audit_log_path(settings.folder, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._stack = ExitStack()
        self.audit_log = self._stack.enter_context(AuditLog(path))
        self.outbox = self._stack.enter_context(RecordingOutbox(path, index, events))
        store = self._stack.enter_context(RequestStore(self.outbox, settings.cluster, self.member))
        broker = BrokerSettings(
            url=settings.broker_url,
            reconnect_min_seconds=settings.reconnect_min_seconds,
            reconnect_max_seconds=settings.reconnect_max_seconds,
        )
        self.publisher = Publisher(
            broker,
            f"kooperant-agent-{self.member}",
            cluster=settings.cluster,
            member=self.member,
            audit_log=self.audit_log,
            outbox=self.outbox,
        )
        self.publisher.requests = RequestInbox(store, lambda: datetime.now(UTC))

    def close(self) -> None:
        self._stack.close()

    async def run(self, stop: asyncio.Event, delay: float) -> None:
        """Publish every interval, after ``delay`` seconds, until ``stop`` is set."""
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
        tasks = [
            asyncio.create_task(self.publisher.run(stop), name=f"{self.member} publisher"),
            asyncio.create_task(self._cycle_until(stop), name=f"{self.member} cycles"),
            asyncio.create_task(self._watch_until(stop), name=f"{self.member} watch"),
        ]
        await asyncio.gather(*tasks)
        self._events.emit(
            "stopped", agent=self.index, failed_attempts=self.publisher.failed_attempts
        )

    async def _cycle_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            now = datetime.now(UTC).replace(microsecond=0)
            self.publisher.update(machine_offers(self.settings, self.member, now), full=True)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.interval_seconds)

    async def _watch_until(self, stop: asyncio.Event) -> None:
        connected = False
        while not stop.is_set():
            now_connected = self.publisher.connected.is_set()
            if now_connected != connected:
                connected = now_connected
                event = "connected" if connected else "disconnected"
                self._events.emit(event, agent=self.index, time=time.time())
            await asyncio.sleep(WATCH_SECONDS)


async def run_fleet(settings: FleetSettings, indexes: range, spread_seconds: float) -> None:
    """Run the agents ``indexes`` until SIGTERM or SIGINT."""
    events = EventWriter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)

    agents = [SimulatedAgent(settings, index, events) for index in indexes]
    writer = asyncio.create_task(events.flush_until(stop), name="event writer")
    events.emit("ready", pid=os.getpid())
    rng = random.Random(indexes.start)
    try:
        await asyncio.gather(*(agent.run(stop, rng.uniform(0, spread_seconds)) for agent in agents))
    finally:
        stop.set()
        await writer
        for agent in agents:
            agent.close()


def parse_arguments(argv: list[str] | None = None) -> tuple[FleetSettings, range, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, required=True, help="folder of the agents' files")
    parser.add_argument("--broker-url", required=True, help="mqtt://HOST:PORT of the broker")
    parser.add_argument("--cluster", default="replay", help="cluster id of every agent")
    parser.add_argument("--first", type=int, required=True, help="index of the first agent")
    parser.add_argument("--count", type=int, required=True, help="number of agents to run")
    parser.add_argument("--resources", type=int, default=10, help="machines per agent")
    parser.add_argument(
        "--interval-seconds", type=float, default=60.0, help="publish interval in seconds"
    )
    parser.add_argument(
        "--spread-seconds",
        type=float,
        default=None,
        help="agents start at random times within this many seconds (default: the interval)",
    )
    parser.add_argument("--reconnect-min-seconds", type=float, default=1.0)
    parser.add_argument("--reconnect-max-seconds", type=float, default=60.0)
    arguments = parser.parse_args(argv)
    settings = FleetSettings(
        folder=arguments.folder,
        broker_url=arguments.broker_url,
        cluster=arguments.cluster,
        resources=arguments.resources,
        interval_seconds=arguments.interval_seconds,
        reconnect_min_seconds=arguments.reconnect_min_seconds,
        reconnect_max_seconds=arguments.reconnect_max_seconds,
    )
    spread = (
        arguments.interval_seconds if arguments.spread_seconds is None else arguments.spread_seconds
    )
    return settings, range(arguments.first, arguments.first + arguments.count), spread


def main() -> None:
    settings, indexes, spread = parse_arguments()
    asyncio.run(run_fleet(settings, indexes, spread))


if __name__ == "__main__":
    main()
