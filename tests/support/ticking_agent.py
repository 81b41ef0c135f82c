"""``kooperant`` with one more adapter type, ``ticking``, for delivery tests run as processes.

Run as ``python -m tests.support.ticking_agent agent run --config FILE``. The ``ticking``
adapter reports its machines with a state that changes every ``interval_seconds`` and calls
``notify_changed`` each time, so the agent publishes changed offers as fast as its debounce
allows. While a file named by ``freeze_file`` exists (relative to the config), the states stay
as they are, so a test can wait for the last offers to arrive and then count.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import agent.config
from adapters.base import Adapter, AdapterSettings, MachineStatus, Observation, cancel_task
from adapters.registry import load_adapter_class
from kooperant.protocol import MachineState

STATES = (MachineState.EXECUTING, MachineState.NOT_EXECUTING, MachineState.OUT_OF_SERVICE)


class TickingSettings(AdapterSettings):
    resources: tuple[str, ...]
    interval_seconds: float = 0.05
    freeze_file: Path = Path("freeze")


class TickingMachines(Adapter[TickingSettings]):
    """Machines whose state moves to the next of ``STATES`` on every tick."""

    settings_model = TickingSettings

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._ticks = 0
        self._since: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._since = self.context.clock()
        self._task = asyncio.create_task(self._tick_forever(), name=f"ticking {self.name}")

    def collect(self) -> list[Observation]:
        assert self._since is not None
        state = STATES[self._ticks % len(STATES)]
        return [
            MachineStatus(resource, state, since=self._since, name=f"Machine {resource}")
            for resource in self.settings.resources
        ]

    async def stop(self) -> None:
        await cancel_task(self._task)

    async def _tick_forever(self) -> None:
        freeze_file = self.resolve_path(self.settings.freeze_file)
        while True:
            await asyncio.sleep(self.settings.interval_seconds)
            if freeze_file.exists():
                continue
            self._ticks += 1
            self._since = self.context.clock()
            self.context.notify_changed()


def _lookup(name: str) -> type[Adapter[Any]]:
    if name == "ticking":
        return TickingMachines
    return load_adapter_class(name)


def main() -> None:
    agent.config.load_adapter_class = _lookup  # type: ignore[attr-defined]
    from kooperant.cli import main as kooperant_main

    kooperant_main()


if __name__ == "__main__":
    main()
