"""Waiting on several ``asyncio.Event`` objects at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def wait_any(events: Iterable[asyncio.Event], max_seconds: float | None = None) -> None:
    """Wait until one of ``events`` is set or ``max_seconds`` pass (``None``: no limit)."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=max_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
