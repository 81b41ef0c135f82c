"""Wiring of the demo: machine park, embedded broker, aggregator and agent in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.config import load_config
from agent.runner import Agent
from kooperant.demo.configs import example_config
from kooperant.demo.machine_park import MachinePark
from kooperant.demo.schedule import write_demo_schedule
from server.broker import EmbeddedBroker
from server.service import ServerSettings, check_http_address, run_server
from server.settings import EMBEDDED_BROKER_PROTOCOL

logger = logging.getLogger(__name__)

DEMO_TIMEZONE = ZoneInfo("Europe/Warsaw")
DEMO_HTTP_HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class DemoAddresses:
    """Addresses of the running demo, printed for the user."""

    dashboard: str
    api: str
    broker: str
    opcua: str
    database: str


async def run_demo(
    *,
    http_port: int,
    duration_seconds: float | None,
    workdir: Path,
    on_ready: Callable[[DemoAddresses], None],
) -> None:
    """Run the demo until SIGINT, SIGTERM or the end of ``duration_seconds``.

    Raises ``server.errors.ServerError`` when the aggregator cannot start. A taken ``http_port``
    is found before the machine park and the broker start.
    """
    check_http_address(DEMO_HTTP_HOST, http_port)

    stop = asyncio.Event()
    _stop_on_signals(stop)
    config_path = example_config("demo", "agent.yaml")
    if not config_path.is_file():
        raise FileNotFoundError(f"demo agent config not found at {config_path}")

    schedule_path = workdir / "plan-produkcji.csv"
    write_demo_schedule(schedule_path, datetime.now(UTC), DEMO_TIMEZONE)
    database = f"sqlite:///{workdir / 'kooperant-demo.db'}"

    async with MachinePark(port=0) as park, EmbeddedBroker(port=0) as broker:
        server_ready = asyncio.Event()
        settings = ServerSettings(
            database=database,
            broker_url=broker.url,
            mqtt_protocol=EMBEDDED_BROKER_PROTOCOL,
            http_host=DEMO_HTTP_HOST,
            http_port=http_port,
        )
        server = asyncio.create_task(run_server(settings, stop, server_ready), name="server")
        await _wait_ready(server, server_ready)

        config = load_config(
            config_path,
            variables={
                "KOOPERANT_DEMO_BROKER_URL": broker.url,
                "KOOPERANT_DEMO_OPCUA_URL": park.endpoint,
                "KOOPERANT_DEMO_SCHEDULE": str(schedule_path),
                "KOOPERANT_DEMO_AUDIT_LOG": str(workdir / "kooperant-demo-audit.db"),
            },
        )
        agent = asyncio.create_task(Agent(config).run(stop), name="agent")

        dashboard = f"http://{DEMO_HTTP_HOST}:{http_port}/"
        on_ready(
            DemoAddresses(
                dashboard, f"{dashboard}api/v1/resources", broker.url, park.endpoint, database
            )
        )
        await _wait_for_stop(stop, duration_seconds, [server, agent])

        stop.set()
        async with asyncio.timeout(SHUTDOWN_TIMEOUT_SECONDS):
            await asyncio.gather(server, agent)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        # NOTE: Windows event loops have no add_signal_handler; Ctrl+C there raises
        # KeyboardInterrupt, which the command turns into a clean exit.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal_number, stop.set)


async def _wait_ready(server: asyncio.Task[None], ready: asyncio.Event) -> None:
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([server, waiter], return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        waiter.cancel()
        server.result()  # re-raises the server's start-up error
        raise RuntimeError("the aggregator stopped before it was ready")


async def _wait_for_stop(
    stop: asyncio.Event, duration_seconds: float | None, tasks: list[asyncio.Task[None]]
) -> None:
    stopper = asyncio.create_task(stop.wait())
    waiting: set[asyncio.Task[object]] = {stopper, *tasks}
    done, _ = await asyncio.wait(
        waiting, timeout=duration_seconds, return_when=asyncio.FIRST_COMPLETED
    )
    stopper.cancel()
    for task in tasks:
        if task in done:
            stop.set()
            task.result()  # a component that ended early ends the demo with its error
            raise RuntimeError(f"demo component {task.get_name()} stopped unexpectedly")
