"""The running agent: policy edits, rule expiry and owner withdrawals, seen by a subscriber."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import aiomqtt
import pytest
from typer.testing import CliRunner

import agent.config
from adapters.base import Adapter, AdapterSettings, MachineStatus, Observation
from adapters.registry import load_adapter_class
from agent.cli import app
from agent.config import load_config
from agent.runner import Agent
from kooperant.protocol import MachineState, offer_topic, withdrawal_topic

pytestmark = pytest.mark.mosquitto

MEMBER = "acme"
SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
# Monday 2026-03-02 10:00 in Warsaw, inside the 06:00-14:00 shift.
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
FAST_POLL_SECONDS = 0.1
SHARE_BOTH = """\
share:
  - resource: cnc-1
    fields: [name, state]
  - resource: cnc-2
    fields: [name]
"""
SHARE_FIRST = "share:\n  - resource: cnc-1\n    fields: [name, state]\n"


class FakeSettings(AdapterSettings):
    resources: tuple[str, ...]


class FakeMachines(Adapter[FakeSettings]):
    """Reports every configured resource as an idle machine."""

    settings_model = FakeSettings
    instances: ClassVar[list[FakeMachines]] = []

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        return [
            MachineStatus(resource, MachineState.NOT_EXECUTING, since=SINCE, name=resource)
            for resource in self.settings.resources
        ]

    async def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def fake_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> type[Adapter[Any]]:
        return FakeMachines if name == "fake" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)


@dataclass
class Message:
    at: float
    topic: str
    payload: bytes

    def data(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.payload)
        return result


class Recording:
    """Every message under the test's cluster, with the monotonic time it arrived."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        """Offers and withdrawals, in order of arrival."""
        self.statuses: list[Message] = []
        """Member status messages, which the agent sends on every connect and stop."""
        self.arrived = asyncio.Event()

    async def first(
        self, condition: Callable[[Message], bool], max_seconds: float = 10.0
    ) -> Message:
        """Return the first recorded message that meets ``condition``, waiting for it."""
        async with asyncio.timeout(max_seconds):
            while True:
                self.arrived.clear()
                for message in self.messages:
                    if condition(message):
                        return message
                await self.arrived.wait()


@pytest.fixture
async def recording(mosquitto_url: str, cluster_id: str) -> AsyncIterator[Recording]:
    recorded = Recording()

    async def listen(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            received = Message(time.monotonic(), str(message.topic), message.payload)
            if received.topic.endswith("/status"):
                recorded.statuses.append(received)
                continue
            recorded.messages.append(received)
            recorded.arrived.set()

    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"{cluster_id}-sub") as client:
        await client.subscribe(f"kooperant/v1/{cluster_id}/#", qos=1)
        task = asyncio.create_task(listen(client))
        yield recorded
        task.cancel()
        for topic in {message.topic for message in recorded.messages + recorded.statuses}:
            await client.publish(topic, b"", qos=1, retain=True)


def write_config(folder: Path, cluster: str, policy: str, interval: float = 60) -> Path:
    write_policy(folder, policy)
    path = folder / "agent.yaml"
    path.write_text(
        f"member: {MEMBER}\ncluster: {cluster}\npublish_interval_seconds: {interval}\n"
        f"broker:\n  url: mqtt://127.0.0.1:1883\n  client_id: {cluster}-agent\n"
        # No session is kept after the test, because the machine's broker is shared.
        "  session_expiry_seconds: 0\n"
        "policy: policy.yaml\naudit_log: audit.db\n"
        "adapters:\n  - type: fake\n    name: hall\n    resources: [cnc-1, cnc-2]\n",
        encoding="utf-8",
    )
    return path


def write_policy(folder: Path, text: str) -> None:
    # Written next to the file and renamed over it, as editors that save safely do.
    staging = folder / "policy.yaml.new"
    staging.write_text(text, encoding="utf-8")
    staging.replace(folder / "policy.yaml")


@asynccontextmanager
async def running(runner: Agent) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def settle(condition: Callable[[], bool], max_seconds: float = 10.0) -> None:
    async with asyncio.timeout(max_seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def is_offer(topic: str) -> Callable[[Message], bool]:
    return lambda message: message.topic == topic and bool(message.payload)


def is_clear(topic: str) -> Callable[[Message], bool]:
    return lambda message: message.topic == topic and not message.payload


def reports(runner: Agent, problem: str) -> Callable[[], bool]:
    return lambda: problem in (runner.policy_error or "")


class Clock:
    """A clock the test sets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def cli() -> Iterator[Callable[..., tuple[int, str]]]:
    def invoke(*arguments: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(arguments), env={"KOOPERANT_LANG": "en"})
        return result.exit_code, result.output

    yield invoke


async def test_invalid_policy_edits_publish_nothing(
    tmp_path: Path, cluster_id: str, recording: Recording
) -> None:
    config = load_config(write_config(tmp_path, cluster_id, SHARE_FIRST), {})
    runner = Agent(config, clock=lambda: NOW, poll_seconds=FAST_POLL_SECONDS)
    policy_path = tmp_path / "policy.yaml"
    invalid = [
        ("share: [\n", "invalid YAML"),
        (SHARE_FIRST + "    colour: red\n", "share[0].colour: unknown key"),
        (SHARE_BOTH[: SHARE_BOTH.index("[name]") + 3], "invalid YAML"),
    ]

    async with running(runner):
        await recording.first(is_offer(offer_topic(cluster_id, MEMBER, "cnc-1")))
        # The watcher's first reading applies the policy once more, which changes nothing.
        await asyncio.sleep(5 * FAST_POLL_SECONDS)
        before = len(recording.messages)
        errors = []
        for content, expected in invalid:
            write_policy(tmp_path, content)
            await settle(reports(runner, expected))
            errors.append(runner.policy_error)
        policy_path.unlink()
        await settle(reports(runner, "file not found"))
        await asyncio.sleep(5 * FAST_POLL_SECONDS)
        after_errors = len(recording.messages)
        policy_resources = set(runner.policy.resources)

        write_policy(tmp_path, SHARE_FIRST)
        await settle(lambda: runner.policy_error is None)
        await asyncio.sleep(5 * FAST_POLL_SECONDS)

    assert before == 1
    assert after_errors == before
    assert len(recording.messages) == before
    assert policy_resources == {"cnc-1"}
    assert all(f"{policy_path}:" in (error or "") for error in errors)


async def test_rule_removal_sends_withdrawal(
    tmp_path: Path,
    cluster_id: str,
    recording: Recording,
    record_property: Callable[[str, object], None],
) -> None:
    config = load_config(write_config(tmp_path, cluster_id, SHARE_BOTH), {})
    runner = Agent(config, clock=lambda: NOW)
    removed = offer_topic(cluster_id, MEMBER, "cnc-2")
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "cnc-2")

    async with running(runner):
        await recording.first(is_offer(removed))
        edited_at = time.monotonic()
        write_policy(tmp_path, SHARE_FIRST)
        sent = await recording.first(is_offer(withdrawal))
        cleared = await recording.first(is_clear(removed))

    seconds = sent.at - edited_at
    record_property("rule_removal_to_withdrawal_seconds", round(seconds, 3))
    assert seconds < 3.0
    assert cleared.at <= sent.at
    assert sent.data()["reason"] == "not_shared"
    assert sent.data()["delete_history"] is False


async def test_rule_expiry_sends_expired_withdrawal(
    tmp_path: Path, cluster_id: str, recording: Recording
) -> None:
    policy = SHARE_FIRST + "    expires: 2026-03-02T10:30:00+00:00\n"
    config = load_config(write_config(tmp_path, cluster_id, policy), {})
    clock = Clock(NOW)
    runner = Agent(config, clock=clock, poll_seconds=FAST_POLL_SECONDS)
    topic = offer_topic(cluster_id, MEMBER, "cnc-1")
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "cnc-1")

    async with running(runner):
        offered = await recording.first(is_offer(topic))
        clock.now = datetime(2026, 3, 2, 10, 30, 5, tzinfo=UTC)
        sent = await recording.first(is_offer(withdrawal))
        cleared = await recording.first(is_clear(topic))

    assert offered.data()["expires_at"] == "2026-03-02T10:30:00+00:00"
    assert cleared.at <= sent.at
    assert sent.data()["reason"] == "expired"
    assert sent.data()["withdrawn_at"] == "2026-03-02T10:30:05+00:00"


async def test_rule_expiry_waits_for_clock(
    tmp_path: Path, cluster_id: str, recording: Recording
) -> None:
    policy = SHARE_FIRST + "    expires: 2026-03-02T10:30:00+00:00\n"
    config = load_config(write_config(tmp_path, cluster_id, policy), {})
    clock = Clock(NOW)
    runner = Agent(config, clock=clock, poll_seconds=FAST_POLL_SECONDS)

    async with running(runner):
        await recording.first(is_offer(offer_topic(cluster_id, MEMBER, "cnc-1")))
        clock.now = datetime(2026, 3, 2, 10, 29, 59, tzinfo=UTC)
        await asyncio.sleep(10 * FAST_POLL_SECONDS)

    assert len(recording.messages) == 1


async def test_withdraw_and_restore_commands(
    tmp_path: Path,
    cluster_id: str,
    recording: Recording,
    cli: Callable[..., tuple[int, str]],
    record_property: Callable[[str, object], None],
) -> None:
    policy = "share:\n  - resource: cnc-1\n    publish_as: frezarka-1\n    fields: [name]\n"
    config_path = write_config(tmp_path, cluster_id, policy, interval=0.5)
    config = load_config(config_path, {})
    runner = Agent(config, clock=lambda: NOW, poll_seconds=FAST_POLL_SECONDS)
    topic = offer_topic(cluster_id, MEMBER, "frezarka-1")
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "frezarka-1")

    async with running(runner):
        await recording.first(is_offer(topic))
        started = time.monotonic()
        status, output = await asyncio.to_thread(
            cli, "withdraw", "frezarka-1", "--delete-history", "--config", str(config_path)
        )
        withdrawn_at = time.monotonic()
        sent = await recording.first(is_offer(withdrawal))
        await recording.first(is_clear(topic))
        # With a 0.5 s publish interval, four full cycles would have brought the offer back.
        await asyncio.sleep(2.0)
        offers_while_withdrawn = [
            message
            for message in recording.messages
            if is_offer(topic)(message) and message.at > withdrawn_at
        ]

        restore_status, restore_output = await asyncio.to_thread(
            cli, "restore", "cnc-1", "--config", str(config_path)
        )
        restored_at = time.monotonic()
        await recording.first(lambda message: is_offer(topic)(message) and message.at > restored_at)
        await recording.first(
            lambda message: is_clear(withdrawal)(message) and message.at > restored_at
        )

    record_property("withdraw_command_to_withdrawal_seconds", round(sent.at - started, 3))
    assert status == 0, output
    assert "Recorded the withdrawal of cnc-1 with a request to delete its history" in output
    assert f"Queued for the broker: {topic}, {withdrawal}." in output
    assert sent.data()["reason"] == "withdrawn"
    assert sent.data()["delete_history"] is True
    assert offers_while_withdrawn == []
    assert runner.withdrawals == {}
    assert restore_status == 0, restore_output
    assert "Removed the withdrawal of cnc-1" in restore_output


async def test_agent_sends_withdrawal_recorded_offline(
    tmp_path: Path, cluster_id: str, recording: Recording, cli: Callable[..., tuple[int, str]]
) -> None:
    config_path = write_config(tmp_path, cluster_id, SHARE_BOTH)
    config = load_config(config_path, {})
    first = Agent(config, clock=lambda: NOW, poll_seconds=FAST_POLL_SECONDS)
    async with running(first):
        await recording.first(is_offer(offer_topic(cluster_id, MEMBER, "cnc-2")))

    # Recorded and queued while the agent is stopped; the command itself sends nothing.
    offline = tmp_path / "offline.yaml"
    offline.write_text(
        config_path.read_text().replace("127.0.0.1:1883", "127.0.0.1:1"), encoding="utf-8"
    )
    status, output = await asyncio.to_thread(cli, "withdraw", "cnc-2", "--config", str(offline))
    second = Agent(config, clock=lambda: NOW + timedelta(minutes=1))
    async with running(second):
        sent = await recording.first(is_offer(withdrawal_topic(cluster_id, MEMBER, "cnc-2")))

    assert status == 0, output
    assert "A running agent sends them within a second of reaching the broker" in output
    assert sent.data()["reason"] == "withdrawn"


async def test_reload_fills_config_variables(tmp_path: Path, cluster_id: str) -> None:
    policy = "share:\n  - resource: ${SHARED}\n    fields: [name]\n"
    config = load_config(write_config(tmp_path, cluster_id, policy), {"SHARED": "cnc-1"})
    runner = Agent(config, clock=lambda: NOW, poll_seconds=FAST_POLL_SECONDS)

    async with running(runner):
        write_policy(tmp_path, policy + "  - resource: cnc-2\n    fields: [name]\n")
        await settle(lambda: "cnc-2" in runner.policy.resources)

    assert runner.policy_error is None
    assert runner.policy.resources == {"cnc-1", "cnc-2"}


async def test_expiry_inside_minute_withdraws(
    tmp_path: Path, cluster_id: str, recording: Recording
) -> None:
    policy = SHARE_FIRST + "    expires: 2026-03-02T10:30:10+00:00\n"
    config = load_config(write_config(tmp_path, cluster_id, policy), {})
    clock = Clock(NOW)
    runner = Agent(config, clock=clock, poll_seconds=FAST_POLL_SECONDS)
    withdrawal = withdrawal_topic(cluster_id, MEMBER, "cnc-1")

    async with running(runner):
        await recording.first(is_offer(offer_topic(cluster_id, MEMBER, "cnc-1")))
        # Offers are computed for 10:30:00, but the share ended at 10:30:10.
        clock.now = datetime(2026, 3, 2, 10, 30, 11, tzinfo=UTC)
        sent = await recording.first(is_offer(withdrawal))

    assert sent.data()["reason"] == "expired"
    assert sent.data()["withdrawn_at"] == "2026-03-02T10:30:11+00:00"


async def test_restart_withdraws_removed_public_id(
    tmp_path: Path, cluster_id: str, recording: Recording
) -> None:
    renamed = "share:\n  - resource: cnc-1\n    publish_as: frezarka\n    fields: [name]\n"
    config_path = write_config(tmp_path, cluster_id, renamed)
    public = offer_topic(cluster_id, MEMBER, "frezarka")

    async with running(Agent(load_config(config_path, {}), clock=lambda: NOW)):
        await recording.first(is_offer(public))
    # The rule is removed while the agent is stopped; the broker still retains the offer.
    write_policy(tmp_path, SHARE_FIRST)
    restarted = Agent(load_config(config_path, {}), clock=lambda: NOW)
    async with running(restarted):
        sent = await recording.first(is_offer(withdrawal_topic(cluster_id, MEMBER, "frezarka")))
        cleared = await recording.first(is_clear(public))

    assert cleared.at <= sent.at
    assert sent.data()["reason"] == "not_shared"


async def test_withdraw_reaches_earlier_public_id(
    tmp_path: Path, cluster_id: str, recording: Recording, cli: Callable[..., tuple[int, str]]
) -> None:
    first_name = "share:\n  - resource: cnc-1\n    publish_as: frez-a\n    fields: [name]\n"
    config_path = write_config(tmp_path, cluster_id, first_name)
    runner = Agent(load_config(config_path, {}), clock=lambda: NOW, poll_seconds=FAST_POLL_SECONDS)
    old_withdrawal = withdrawal_topic(cluster_id, MEMBER, "frez-a")

    async with running(runner):
        await recording.first(is_offer(offer_topic(cluster_id, MEMBER, "frez-a")))
        write_policy(tmp_path, first_name.replace("frez-a", "frez-b"))
        await recording.first(is_offer(offer_topic(cluster_id, MEMBER, "frez-b")))
        renamed = await recording.first(is_offer(old_withdrawal))
        arrived = len(recording.messages)
        status, output = await asyncio.to_thread(
            cli, "withdraw", "cnc-1", "--delete-history", "--config", str(config_path)
        )
        later = await recording.first(
            lambda message: (
                is_offer(old_withdrawal)(message) and recording.messages.index(message) >= arrived
            )
        )

    assert status == 0, output
    assert renamed.data()["delete_history"] is False
    assert later.data()["reason"] == "withdrawn"
    assert later.data()["delete_history"] is True
