"""Shared adapter helpers in adapters.base."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import cancel_task


async def test_cancel_task_ends_task_that_swallows_a_cancel() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                # Some client libraries lose a cancellation like this on Python 3.11.
                if swallowed == 0:
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await cancel_task(task)

    assert swallowed == 1
    assert task.cancelled()


async def test_cancel_task_ignores_none() -> None:
    await cancel_task(None)


async def test_cancel_task_raises_error_that_ended_task() -> None:
    async def failing() -> None:
        raise ValueError("source broke")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)

    with pytest.raises(ValueError, match="source broke"):
        await cancel_task(task)
