"""Rate limit of failed dashboard sign-ins, per client IP address and per user name.

After ``MAX_FAILURES`` failed attempts within ``WINDOW`` for one key, that key is locked until the
oldest of those failures is ``WINDOW`` old. While a key is locked every attempt is rejected
before the password is checked, so a correct password does not get through either. A successful
sign-in clears the counter of its user name (not of the IP address, which may be shared by a
whole office behind NAT).

The counters live in this process's memory: they start empty after a restart, and several
server processes behind one load balancer each count on their own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from time import monotonic

MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)
# Keys without a failure within the window are dropped once the table grows past this size.
_PRUNE_ABOVE = 10_000


class LoginLimiter:
    """Counts failed sign-ins per key (``ip:ADDRESS`` or ``user:NAME``); ``clock`` is seconds."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: timedelta = WINDOW,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window.total_seconds()
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock_logged_until: dict[str, float] = {}

    def retry_after(self, *keys: str) -> int | None:
        """Return the seconds until every locked key among ``keys`` unlocks, or ``None``."""
        now = self._clock()
        waits = [self._wait(key, now) for key in keys]
        locked = [wait for wait in waits if wait is not None]
        return max(locked) if locked else None

    def first_rejection(self, *keys: str) -> bool:
        """Return whether this is the first rejected attempt of the current lock of any key.

        The caller logs the lock only then, so that an attack does not flood the log.
        """
        now = self._clock()
        first = False
        for key in keys:
            wait = self._wait(key, now)
            if wait is None or self._lock_logged_until.get(key, -math.inf) > now:
                continue
            self._lock_logged_until[key] = now + wait
            first = True
        return first

    def record_failure(self, *keys: str) -> None:
        now = self._clock()
        if len(self._failures) > _PRUNE_ABOVE:
            self._prune(now)
        for key in keys:
            failures = self._failures.setdefault(key, deque())
            failures.append(now)
            self._drop_old(failures, now)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> int | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        self._drop_old(failures, now)
        if len(failures) < self._max_failures:
            return None
        unlock_at = failures[-self._max_failures] + self._window
        return max(1, math.ceil(unlock_at - now))

    def _drop_old(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self._window:
            failures.popleft()

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            failures = self._failures[key]
            self._drop_old(failures, now)
            if not failures:
                del self._failures[key]
                self._lock_logged_until.pop(key, None)
