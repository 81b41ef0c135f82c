"""Reading one mount with a time limit, and its health for ``Adapter.health()``.

A read of a network share whose server is gone can block in the kernel for minutes, and a
thread blocked there cannot be stopped. Each read therefore runs in a daemon thread of its own,
outside asyncio's default executor, which a few hung reads would otherwise fill. The adapter
waits ``mount_timeout_seconds`` for it. While a read still hangs, no second thread is started
for the same mount: the next sample waits for the hung read again.

States: ``CONNECTING`` until the first read ends, ``CONNECTED`` after a read that succeeded and
``DISCONNECTED`` after one that failed or timed out, or for a mount missing at start, which is
never read again. A failure is logged once when the mount starts failing and once when it can be
read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import psutil

from adapters.base import ConnectionState, SourceHealth
from adapters.errors import AdapterSettingsError
from adapters.host.mounts import MountReading, MountType

logger = logging.getLogger(__name__)

READ_FAILURES = "read_failures"
TIMEOUTS = "timeouts"
COUNTER_NAMES = (READ_FAILURES, TIMEOUTS)


class MountProbe:
    """One configured mount: reads its free space in a thread and keeps its health."""

    def __init__(
        self,
        adapter_name: str,
        path: str,
        *,
        timeout_seconds: float,
        read_mount: Callable[[str], MountReading],
        clock: Callable[[], datetime],
    ) -> None:
        self.path = path
        self.skipped = False
        self._adapter_name = adapter_name
        self._timeout = timeout_seconds
        self._read_mount = read_mount
        self._clock = clock
        self._pending: asyncio.Future[MountReading] | None = None
        self._mount_type: MountType | None = None
        self._state = ConnectionState.CONNECTING
        self._since = clock()
        self._reconnects = 0
        self._last_data: datetime | None = None
        self._counters: Counter[str] = Counter()
        self._detail: str | None = None

    async def read(self, *, first: bool = False) -> MountReading | None:
        """Return the mount's free space, or ``None`` when the read failed or timed out.

        With ``first``, a path that does not exist is logged as a settings error and the mount
        is skipped from then on.
        """
        if self.skipped:
            return None
        if self._pending is None or self._pending.done():
            self._pending = self._start_thread()

        try:
            reading = await asyncio.wait_for(asyncio.shield(self._pending), self._timeout)
        except TimeoutError:
            message = f"reading free space timed out after {self._timeout:g} s"
            self._record_failure(TIMEOUTS, message)
            return None
        except FileNotFoundError as error:
            if first:
                self._skip()
                return None
            self._record_failure(READ_FAILURES, f"reading free space failed: {error}")
            return None
        except (OSError, psutil.Error) as error:
            self._record_failure(READ_FAILURES, f"reading free space failed: {error}")
            return None

        self._record_success(reading)
        return reading

    def health(self) -> SourceHealth:
        """Return the mount's health; the source names its file system once it was read."""
        source = f"mount {self.path}"
        if self._mount_type is not None:
            source += f" ({self._mount_type.describe()})"
        return SourceHealth(
            source=source,
            state=self._state,
            since=self._since,
            reconnects=self._reconnects,
            last_data=self._last_data,
            errors={name: self._counters[name] for name in COUNTER_NAMES},
            detail=self._detail,
        )

    def _start_thread(self) -> asyncio.Future[MountReading]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[MountReading] = loop.create_future()

        def deliver(result: MountReading | None, error: Exception | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                assert result is not None
                future.set_result(result)

        def run() -> None:
            result, error = None, None
            try:
                result = self._read_mount(self.path)
            except Exception as caught:  # raised in the awaiting task, which counts and logs it
                error = caught
            # RuntimeError: the event loop closed while the read hung, so no task awaits it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(deliver, result, error)

        name = f"host adapter {self._adapter_name} mount {self.path}"
        threading.Thread(target=run, name=name, daemon=True).start()
        return future

    def _record_success(self, reading: MountReading) -> None:
        self._mount_type = reading.mount_type
        self._last_data = self._clock()
        if self._state is ConnectionState.DISCONNECTED:
            self._reconnects += 1
            logger.info(
                "adapter %r: mount %r can be read again (%s)",
                self._adapter_name,
                self.path,
                reading.mount_type.describe(),
            )
        self._set_state(ConnectionState.CONNECTED)

    def _record_failure(self, counter: str, message: str) -> None:
        self._counters[counter] += 1
        self._detail = message
        if self._state is not ConnectionState.DISCONNECTED:
            logger.error(
                "adapter %r: mount %r is left out until it can be read again: %s",
                self._adapter_name,
                self.path,
                message,
            )
        self._set_state(ConnectionState.DISCONNECTED)

    def _skip(self) -> None:
        settings_error = AdapterSettingsError(
            f"adapter {self._adapter_name!r}: mount {self.path!r} in 'mounts' does not exist; "
            "fix the path or remove it. Its disk space is not reported."
        )
        logger.error("%s", settings_error)
        self.skipped = True
        self._detail = str(settings_error)
        self._set_state(ConnectionState.DISCONNECTED)

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self._state:
            self._state = state
            self._since = self._clock()
