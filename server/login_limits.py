"""Rate limit of failed dashboard sign-ins, counted under three keys for each attempt.

- a user name from one client address: locked after ``MAX_USER_ADDRESS_FAILURES`` (10) failures,
  so one address guesses slowly;
- a client address across all user names: locked after ``MAX_ADDRESS_FAILURES`` (30), so one
  address cannot try a few passwords for many users;
- a user name across all addresses: locked after ``MAX_USER_FAILURES`` (100), which slows
  guessing spread over many addresses.

A key that reaches its limit within ``WINDOW`` is locked until the oldest of those failures is
``WINDOW`` old. While any key of an attempt is locked the attempt is rejected before the password
is checked, so a correct password does not get through either. An attacker who has only a user
name therefore blocks that user only at the attacker's address, and at every address only after
100 failures within the window. A successful sign-in clears the counter of its user name and
address, but not the other two, because an office behind NAT shares one address and a user-wide
count is the defence against distributed guessing.

The counters live in this process's memory: they start empty after a restart, which is how an
operator lifts a lock early, and several server processes behind one load balancer each count on
their own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic

MAX_USER_ADDRESS_FAILURES = 10
MAX_ADDRESS_FAILURES = 30
MAX_USER_FAILURES = 100
WINDOW = timedelta(minutes=15)
# Keys without a failure within the window are dropped once the table grows past this size.
_PRUNE_ABOVE = 10_000


@dataclass(frozen=True, slots=True)
class LimitKey:
    """One counter of failed sign-ins and the number of failures that locks it."""

    name: str
    max_failures: int


def user_address_key(username: str, address: str) -> LimitKey:
    """Return the key of ``username`` (compared in lower case) from the client ``address``."""
    return LimitKey(f"user-address:{username.lower()}@{address}", MAX_USER_ADDRESS_FAILURES)


def sign_in_keys(username: str, address: str) -> tuple[LimitKey, LimitKey, LimitKey]:
    """Return the keys under which a sign-in of ``username`` from ``address`` is counted."""
    return (
        user_address_key(username, address),
        LimitKey(f"address:{address}", MAX_ADDRESS_FAILURES),
        LimitKey(f"user:{username.lower()}", MAX_USER_FAILURES),
    )


class LoginLimiter:
    """Counts failed sign-ins per ``LimitKey``; ``clock`` returns seconds."""

    def __init__(
        self,
        *,
        window: timedelta = WINDOW,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._window = window.total_seconds()
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock_logged_until: dict[str, float] = {}

    def retry_after(self, *keys: LimitKey) -> int | None:
        """Return the seconds until every locked key among ``keys`` unlocks, or ``None``."""
        now = self._clock()
        waits = [self._wait(key, now) for key in keys]
        locked = [wait for wait in waits if wait is not None]
        return max(locked) if locked else None

    def first_rejection(self, *keys: LimitKey) -> bool:
        """Return whether this is the first rejected attempt of the current lock of any key.

        The caller logs the lock only then, so that an attack does not flood the log.
        """
        now = self._clock()
        first = False
        for key in keys:
            wait = self._wait(key, now)
            if wait is None or self._lock_logged_until.get(key.name, -math.inf) > now:
                continue
            self._lock_logged_until[key.name] = now + wait
            first = True
        return first

    def record_failure(self, *keys: LimitKey) -> None:
        now = self._clock()
        if len(self._failures) > _PRUNE_ABOVE:
            self._prune(now)
        for key in keys:
            failures = self._failures.setdefault(key.name, deque())
            failures.append(now)
            self._drop_old(failures, now)

    def reset(self, key: LimitKey) -> None:
        self._failures.pop(key.name, None)

    def _wait(self, key: LimitKey, now: float) -> int | None:
        failures = self._failures.get(key.name)
        if failures is None:
            return None
        self._drop_old(failures, now)
        if len(failures) < key.max_failures:
            return None
        unlock_at = failures[-key.max_failures] + self._window
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
