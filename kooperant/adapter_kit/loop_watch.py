"""Measure how long the event loop was blocked while a block of adapter code ran."""

from __future__ import annotations

import asyncio
from types import TracebackType

TICK_SECONDS = 0.02


class LoopWatch:
    """Async context manager that records the longest delay of a ticking task, in seconds.

    A tick that wakes up later than asked means something held the loop: a blocking call in a
    coroutine, or a long synchronous method such as a slow ``collect()``.
    """

    def __init__(self, tick_seconds: float = TICK_SECONDS) -> None:
        self.tick_seconds = tick_seconds
        self.max_lag_seconds = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._tick(), name="adapter kit loop watch")
        return self

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.tick_seconds)
            lag = loop.time() - before - self.tick_seconds
            self.max_lag_seconds = max(self.max_lag_seconds, lag)
