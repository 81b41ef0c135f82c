"""Rules with delay_minutes: free time follows the past state, never the live one."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

import agent.config
from adapters.base import Adapter, AdapterSettings, MachineStatus, Observation
from adapters.registry import load_adapter_class
from agent.config import load_config
from agent.runner import Agent
from kooperant.intervals import Interval
from kooperant.protocol import MachineState, Offer

# Monday 2026-03-02 in Warsaw (UTC+1); one shift 06:00-14:00 local, 05:00-13:00 UTC.
NINE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TEN = NINE + timedelta(hours=1)
# With a one-day horizon from 09:00 UTC, Tuesday's shift is free until 09:00 UTC.
TUESDAY = Interval(datetime(2026, 3, 3, 5, 0, tzinfo=UTC), datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
REST_OF_MONDAY = Interval(TEN, datetime(2026, 3, 2, 13, 0, tzinfo=UTC))


class ScriptedSettings(AdapterSettings):
    resource: str


class ScriptedMachine(Adapter[ScriptedSettings]):
    """Reports the state the test sets in ``current``."""

    settings_model = ScriptedSettings
    current: ClassVar[tuple[MachineState, datetime]] = (MachineState.NOT_EXECUTING, NINE)

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        state, since = ScriptedMachine.current
        return [MachineStatus(self.settings.resource, state, since)]

    async def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def scripted_adapter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def lookup(name: str) -> type[Adapter[Any]]:
        return ScriptedMachine if name == "scripted" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)
    ScriptedMachine.current = (MachineState.NOT_EXECUTING, NINE - timedelta(hours=1))
    yield


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_agent(folder: Path, delay: str, clock: Clock) -> Agent:
    (folder / "policy.yaml").write_text(
        f"share:\n  - resource: cnc-1\n    fields: [state, free_intervals]\n{delay}",
        encoding="utf-8",
    )
    config = folder / "agent.yaml"
    text = """
        member: acme
        cluster: pomorskie-metal
        horizon_days: 1
        broker: {url: "mqtt://127.0.0.1:1883"}
        calendar:
          shifts: [{days: [mon, tue, wed, thu, fri], start: "06:00", end: "14:00"}]
        policy: policy.yaml
        adapters:
          - {type: scripted, name: hall, resource: cnc-1}
    """
    config.write_text(textwrap.dedent(text), encoding="utf-8")
    return Agent(load_config(config, {}), clock=clock)


async def public_offer(runner: Agent) -> Offer:
    (offer,) = runner.plan(runner.collect_offers()).offers
    return offer


async def offers_at_nine_and_ten(folder: Path, delay: str) -> tuple[Offer, Offer]:
    clock = Clock(NINE)
    runner = make_agent(folder, delay, clock)
    await runner.start_adapters()
    at_nine = await public_offer(runner)

    # At 09:55 UTC the machine broke; it still counts as down until its shift ends at 13:00 UTC.
    ScriptedMachine.current = (MachineState.OUT_OF_SERVICE, TEN - timedelta(minutes=5))
    clock.now = TEN
    at_ten = await public_offer(runner)
    await runner.stop_adapters()
    return at_nine, at_ten


async def test_live_state_shapes_free_time(tmp_path: Path) -> None:
    _, at_ten = await offers_at_nine_and_ten(tmp_path, "")

    assert at_ten.state is MachineState.OUT_OF_SERVICE
    assert at_ten.free_intervals == (TUESDAY,)


async def test_delayed_rule_hides_live_state(tmp_path: Path) -> None:
    _, at_ten = await offers_at_nine_and_ten(tmp_path, "    delay_minutes: 60\n")

    # An hour ago the machine was idle, so its free time is the rest of the shift.
    assert at_ten.state is MachineState.NOT_EXECUTING
    assert at_ten.free_intervals == (REST_OF_MONDAY, TUESDAY)


async def test_unknown_past_state_ignores_live_state(tmp_path: Path) -> None:
    clock = Clock(TEN)
    runner = make_agent(tmp_path, "    delay_minutes: 60\n", clock)
    ScriptedMachine.current = (MachineState.OUT_OF_SERVICE, TEN - timedelta(minutes=5))
    await runner.start_adapters()
    offer = await public_offer(runner)
    await runner.stop_adapters()

    assert offer.state is None
    assert offer.free_intervals == (REST_OF_MONDAY, TUESDAY)
