"""When the agent's run loop starts a cycle after ``notify_changed``: at once, but rate limited."""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from pathlib import Path

import pytest

from agent.config import load_config
from agent.runner import DEBOUNCE_SECONDS, Agent

# Allowance for scheduling delays on a busy machine, well below DEBOUNCE_SECONDS.
SLACK_SECONDS = 0.15


class CycleClock:
    """Replaces ``Agent._cycle`` and records the loop time each cycle starts."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.ran = asyncio.Event()

    def __call__(self, full: bool) -> None:
        self.started.append(asyncio.get_running_loop().time())
        self.ran.set()

    async def next_cycle(self, max_seconds: float = 2.0) -> float:
        self.ran.clear()
        await asyncio.wait_for(self.ran.wait(), max_seconds)
        return self.started[-1]


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    config = tmp_path / "agent.yaml"
    text = """
        member: acme
        cluster: debounce
        publish_interval_seconds: 3600
        broker:
          url: mqtt://127.0.0.1:1
        policy: policy.yaml
        status:
          enabled: false
    """
    config.write_text(textwrap.dedent(text), encoding="utf-8")
    return Agent(load_config(config, {}))


async def run_loop(agent: Agent, cycles: CycleClock) -> tuple[asyncio.Event, asyncio.Task[None]]:
    agent._cycle = cycles  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(agent._cycle_until(stop, []))
    await cycles.next_cycle()  # the first, full cycle at start
    return stop, task


async def test_change_after_quiet_spell_cycles_at_once(agent: Agent) -> None:
    cycles = CycleClock()
    stop, task = await run_loop(agent, cycles)
    await asyncio.sleep(DEBOUNCE_SECONDS + 0.1)

    loop = asyncio.get_running_loop()
    changed_at = loop.time()
    agent.notify_changed()
    started = await cycles.next_cycle()
    stop.set()
    await task

    assert started - changed_at < SLACK_SECONDS


async def test_change_soon_after_cycle_waits_debounce(agent: Agent) -> None:
    cycles = CycleClock()
    stop, task = await run_loop(agent, cycles)
    previous = cycles.started[-1]

    agent.notify_changed()
    started = await cycles.next_cycle()
    stop.set()
    await task

    assert started - previous >= DEBOUNCE_SECONDS - 0.01


async def test_flapping_source_cycles_bounded(agent: Agent) -> None:
    cycles = CycleClock()
    stop, task = await run_loop(agent, cycles)
    await asyncio.sleep(DEBOUNCE_SECONDS + 0.1)
    loop = asyncio.get_running_loop()
    first_change = loop.time()
    flapping_seconds = 2.0

    while loop.time() - first_change < flapping_seconds:
        agent.notify_changed()
        await asyncio.sleep(0.01)
    last_change = loop.time()
    await asyncio.sleep(DEBOUNCE_SECONDS + SLACK_SECONDS)
    stop.set()
    await task

    during = [moment for moment in cycles.started if moment >= first_change]
    gaps = [later - earlier for earlier, later in itertools.pairwise(during)]
    assert len(during) <= flapping_seconds / DEBOUNCE_SECONDS + 2
    assert min(gaps) >= DEBOUNCE_SECONDS - 0.01
    # The last change is not lost: a cycle follows it.
    assert during[-1] >= last_change - DEBOUNCE_SECONDS
