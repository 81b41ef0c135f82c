"""Tests of the log lines about sending the outbox backlog after an outage (``agent.replay_log``).

The outbox is a real SQLite file and the large backlog goes to Mosquitto on 127.0.0.1:1883. Time
comes from a clock that moves a fixed step on every reading, so the seconds in the log lines do
not depend on the machine. The interrupted replay uses a session fake at ``publish``, the one
method the forwarder calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.forwarder import Forwarder
from agent.outbox import Outbox, OutgoingMessage
from kooperant.mqtt import ConnectionLost, ConnectOptions, MqttSession
from kooperant.protocol import offer_topic
from kooperant.protocol.envelope import Envelope

QUEUED_AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
OUTAGE = timedelta(hours=2)
CLUSTER = "replay-test"
MEMBER = "acme"
REPLAY_LOGGER = "agent.replay_log"


class StepClock:
    """A clock that moves ``step`` forward after every reading."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        moment = self.now
        self.now += self.step
        return moment


class FailingSession:
    """A session whose ``publish`` works ``count`` times and then reports a lost connection."""

    def __init__(self, count: int) -> None:
        self.left = count

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        if self.left == 0:
            raise ConnectionLost("connection lost in the test")
        self.left -= 1


def queue_backlog(path: Path, count: int) -> None:
    """Queue ``count`` offers of 200 bytes as an agent does while the broker is unreachable."""

    def build(envelope: Envelope) -> bytes:
        return json.dumps({"message_id": envelope.message_id, "fill": "x" * 150}).encode()

    messages = [
        OutgoingMessage(offer_topic(CLUSTER, MEMBER, f"machine-{number}"), build, retain=False)
        for number in range(count)
    ]
    with Outbox(path, clock=lambda: QUEUED_AT) as outbox:
        outbox.enqueue(messages)


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "kooperant-audit.db"


def lines_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == REPLAY_LOGGER and record.levelno == logging.INFO
    ]


async def drain_until_empty(forwarder: Forwarder, session: Any) -> None:
    """Run ``drain`` until the queue is empty and the forwarder waits for new messages."""
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.drain(session, stop))
    async with asyncio.timeout(120):
        while forwarder.outbox.state().queued_messages:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    # One more poll, so that the forwarder finds the queue empty.
    await asyncio.sleep(0.1)
    stop.set()
    forwarder.wakeup.set()
    await task


async def test_large_backlog_logged_throughout(
    outbox_path: Path, mosquitto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REPLAY_LOGGER)
    queue_backlog(outbox_path, 5000)
    clock = StepClock(QUEUED_AT + OUTAGE, timedelta(milliseconds=5))
    options = ConnectOptions(host="127.0.0.1", port=1883, client_id=f"replay-{uuid.uuid4().hex}")

    with Outbox(outbox_path, clock=clock) as outbox:
        forwarder = Forwarder(outbox, clock, poll_seconds=0.05)
        async with MqttSession(options) as session:
            await drain_until_empty(forwarder, session)

    lines = lines_of(caplog)
    assert forwarder.published_messages == 5000
    assert re.fullmatch(
        r"Sending the outbox backlog of 5000 messages \(\d+\.\d MB\), "
        r"the oldest queued 2:00:00 ago",
        lines[0],
    ), lines[0]
    progress_line = r".*: (\d+) of (\d+) messages sent, \d+ messages/s"
    progress = [re.fullmatch(progress_line, line) for line in lines[1:-1]]
    assert all(progress), lines
    sent = [int(match.group(1)) for match in progress if match]
    assert len(sent) >= 3
    assert sent == sorted(sent)
    assert {int(match.group(2)) for match in progress if match} == {5000}
    assert re.fullmatch(
        r"Sent the outbox backlog: 5000 messages in \d+\.\d s \(\d+ messages/s\)", lines[-1]
    ), lines[-1]


async def test_progress_lines_ten_seconds_apart(
    outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REPLAY_LOGGER)
    queue_backlog(outbox_path, 1500)
    clock = StepClock(QUEUED_AT + OUTAGE, timedelta(milliseconds=20))

    with Outbox(outbox_path, clock=clock) as outbox:
        forwarder = Forwarder(outbox, clock, poll_seconds=0.05)
        await drain_until_empty(forwarder, FailingSession(10_000))

    lines = lines_of(caplog)
    progress = [line for line in lines if "messages sent" in line]
    # 1,500 messages read the clock twice each: 60 s of the test clock, so 5 or 6 lines.
    assert len(progress) in (5, 6), lines
    assert "1500 messages in 60.0 s" in lines[-1] or "1500 messages in 59.9 s" in lines[-1]


async def test_small_backlog_logs_one_line(
    outbox_path: Path, mosquitto_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REPLAY_LOGGER)
    queue_backlog(outbox_path, 20)
    clock = StepClock(QUEUED_AT + OUTAGE, timedelta(milliseconds=5))
    options = ConnectOptions(host="127.0.0.1", port=1883, client_id=f"replay-{uuid.uuid4().hex}")

    with Outbox(outbox_path, clock=clock) as outbox:
        forwarder = Forwarder(outbox, clock, poll_seconds=0.05)
        async with MqttSession(options) as session:
            await drain_until_empty(forwarder, session)

    lines = lines_of(caplog)
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"Sent 20 messages queued while the broker was unreachable, in 0\.\d s", lines[0]
    ), lines[0]


async def test_slow_small_backlog_announced_late(
    outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REPLAY_LOGGER)
    queue_backlog(outbox_path, 20)
    clock = StepClock(QUEUED_AT + OUTAGE, timedelta(seconds=1))

    with Outbox(outbox_path, clock=clock) as outbox:
        forwarder = Forwarder(outbox, clock, poll_seconds=0.05)
        await drain_until_empty(forwarder, FailingSession(10_000))

    lines = lines_of(caplog)
    assert lines[0].startswith("Sending the outbox backlog of 20 messages"), lines
    assert re.search(r"; started [56] s ago$", lines[0]), lines[0]
    assert lines[-1].startswith("Sent the outbox backlog: 20 messages in "), lines
    assert any("of 20 messages sent" in line for line in lines[1:-1]), lines


async def test_interrupted_backlog_logs_what_is_left(
    outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REPLAY_LOGGER)
    queue_backlog(outbox_path, 1200)
    clock = StepClock(QUEUED_AT + OUTAGE, timedelta(milliseconds=5))

    with Outbox(outbox_path, clock=clock) as outbox:
        forwarder = Forwarder(outbox, clock, poll_seconds=0.05)
        with pytest.raises(ConnectionLost):
            await forwarder.drain(FailingSession(700), asyncio.Event())  # type: ignore[arg-type]

    lines = lines_of(caplog)
    assert lines[0].startswith("Sending the outbox backlog of 1200 messages"), lines
    assert re.fullmatch(
        r"Sending the outbox backlog stopped after 700 messages in \d+\.\d s; "
        r"500 stay queued for the next connection",
        lines[-1],
    ), lines[-1]


async def test_queued_while_connected_not_logged(
    outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REPLAY_LOGGER)
    clock = StepClock(QUEUED_AT, timedelta(milliseconds=5))

    with Outbox(outbox_path, clock=clock) as outbox:
        forwarder = Forwarder(outbox, clock, poll_seconds=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(forwarder.drain(FailingSession(10_000), stop))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        queue_backlog(outbox_path, 30)
        async with asyncio.timeout(30):
            while forwarder.published_messages < 30:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        stop.set()
        await task

    assert lines_of(caplog) == []
