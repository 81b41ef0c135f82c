"""The demo machine park served from a thread, for tests whose code under test calls asyncio.run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kooperant.demo.machine_park import MachinePark

START_TIMEOUT_SECONDS = 30.0


@contextmanager
def machine_park_in_thread() -> Iterator[MachinePark]:
    """Run a ``MachinePark`` on a free loopback port in its own event loop and thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="machine-park", daemon=True)
    thread.start()
    # A slow simulation, so that states do not change while a test reads them.
    park = MachinePark(port=0, change_interval_seconds=60)
    try:
        asyncio.run_coroutine_threadsafe(park.__aenter__(), loop).result(START_TIMEOUT_SECONDS)
        try:
            yield park
        finally:
            stop = park.__aexit__(None, None, None)
            asyncio.run_coroutine_threadsafe(stop, loop).result(START_TIMEOUT_SECONDS)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
