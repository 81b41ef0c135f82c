"""``kooperant agent run`` as a process: killed with messages queued, and its MQTT will."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from agent.outbox import Outbox
from kooperant.mqtt import ConnectOptions, MqttError, MqttSession, ReceivedMessage
from kooperant.protocol import MemberState, OfflineReason, parse_status, status_topic
from tests.conftest import REPO_ROOT
from tests.support.mosquitto import OwnMosquitto

CLUSTER = "process-test"
MEMBER = "acme"
# Starting Python and the adapters takes a few seconds on a loaded machine.
START_SECONDS = 30.0


def write_config(folder: Path, broker_url: str) -> Path:
    (folder / "policy.yaml").write_text(
        "share:\n  - resource: server-01\n    fields: [amounts]\n", encoding="utf-8"
    )
    path = folder / "agent.yaml"
    text = f"""
        member: {MEMBER}
        cluster: {CLUSTER}
        publish_interval_seconds: 1
        broker:
          url: {broker_url}
          reconnect_min_seconds: 0.1
          reconnect_max_seconds: 0.5
        policy: policy.yaml
        audit_log: audit.db
        status: {{enabled: false}}
        adapters:
          - type: host
            name: serwer
            resource: server-01
            mounts: ["/"]
            sample_interval_seconds: 0.2
            window_seconds: 1
    """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@contextmanager
def agent_process(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``kooperant agent run``; killed on exit if the test has not ended it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kooperant", "agent", "run", "--config", str(config)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    folder = tmp_path / "broker"
    folder.mkdir()
    try:
        own = OwnMosquitto(folder, persistence=True)
    except FileNotFoundError as error:
        pytest.skip(str(error))
    try:
        yield own
    finally:
        own.stop()


class Collector:
    """Every message under the test's cluster, received in a kept session."""

    def __init__(self, port: int) -> None:
        self.options = ConnectOptions(
            host="127.0.0.1",
            port=port,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            clean_start=False,
            session_expiry_seconds=300,
        )
        self.messages: list[ReceivedMessage] = []

    async def run(self) -> None:
        while True:
            try:
                async with MqttSession(self.options) as session:
                    if not session.session_present:
                        await session.subscribe([f"kooperant/v1/{CLUSTER}/#"])
                    async for message in session.messages():
                        self.messages.append(message)
            except MqttError:
                await asyncio.sleep(0.05)

    def message_ids(self) -> set[str]:
        return {
            json.loads(message.payload)["message_id"]
            for message in self.messages
            if message.payload and "/offers/" in message.topic
        }

    def statuses(self) -> list[tuple[MemberState, OfflineReason | None, str]]:
        found = []
        for message in self.messages:
            if message.topic == status_topic(CLUSTER, MEMBER) and message.payload:
                status = parse_status(message.payload)
                found.append((status.state, status.reason, status.connected_at.isoformat()))
        return found


@asynccontextmanager
async def collecting(port: int) -> AsyncIterator[Collector]:
    collector = Collector(port)
    task = asyncio.create_task(collector.run())
    try:
        yield collector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def settle(condition: Callable[[], bool], max_seconds: float = START_SECONDS) -> None:
    """Wait until ``condition`` holds; it is checked every 50 ms, because nothing signals it."""
    async with asyncio.timeout(max_seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


def queued_ids(path: Path) -> set[str]:
    with Outbox(path) as outbox:
        return {message.message_id for message in outbox.queued() if message.payload}


async def test_killed_agent_sends_queue_later(tmp_path: Path, broker: OwnMosquitto) -> None:
    config = write_config(tmp_path, broker.url)
    audit_file = tmp_path / "audit.db"

    # The broker is down: the first agent only queues, then dies without any clean-up.
    with agent_process(config) as first:
        await settle(lambda: audit_file.exists() and len(queued_ids(audit_file)) >= 2)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    left_behind = queued_ids(audit_file)

    broker.start()
    async with collecting(broker.port) as collector:
        with agent_process(config) as second:
            await settle(lambda: left_behind <= collector.message_ids())
            await settle(lambda: len(collector.statuses()) >= 1)
            second.send_signal(signal.SIGKILL)
            second.wait(10)
            # The broker notices the dropped connection at once and publishes the will.
            await settle(lambda: len(collector.statuses()) >= 2, max_seconds=10)

    (online, online_reason, online_since), (lost, lost_reason, lost_since) = collector.statuses()[
        :2
    ]
    assert len(left_behind) >= 2
    assert (online, online_reason) == (MemberState.ONLINE, None)
    assert (lost, lost_reason) == (MemberState.OFFLINE, OfflineReason.CONNECTION_LOST)
    assert lost_since == online_since


async def test_stopped_agent_says_stopped(tmp_path: Path, broker: OwnMosquitto) -> None:
    broker.start()
    config = write_config(tmp_path, broker.url)

    async with collecting(broker.port) as collector:
        with agent_process(config) as process:
            await settle(lambda: len(collector.statuses()) >= 1)
            process.send_signal(signal.SIGTERM)
            status = process.wait(START_SECONDS)
            await settle(lambda: len(collector.statuses()) >= 2, max_seconds=10)

    assert status == 0
    states = [(state, reason) for state, reason, _ in collector.statuses()]
    assert states == [(MemberState.ONLINE, None), (MemberState.OFFLINE, OfflineReason.STOPPED)]
