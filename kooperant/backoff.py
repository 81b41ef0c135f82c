"""Bounded exponential backoff with jitter, for reconnecting to brokers and servers.

``BackoffPolicy`` contains the settings and computes the delay for a given attempt from a random
value that the caller supplies, so the computation is a pure function. ``Backoff`` counts the
attempts for a caller that only needs the next delay and a reset after a success.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Settings of bounded exponential backoff with jitter, with delays in seconds.

    The base delay grows from ``minimum`` by ``multiplier`` per attempt up to ``maximum``. Below
    ``maximum``, each delay is lengthened by up to ``jitter`` (a fraction of the base) and capped
    at ``maximum``. Once the base has reached ``maximum``, each delay is shortened by up to
    ``jitter`` instead. Either way many clients that lost the same server do not all come back
    at the same instant, even after a long outage. Every delay is between ``minimum`` and
    ``maximum``.
    """

    minimum: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.minimum > 0:
            raise ValueError(f"invalid backoff: minimum delay {self.minimum} s must be above 0")
        if not self.maximum >= self.minimum:
            raise ValueError(
                f"invalid backoff: maximum delay {self.maximum} s is below the minimum delay "
                f"{self.minimum} s"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"invalid backoff: multiplier {self.multiplier} must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"invalid backoff: jitter {self.jitter} must be in [0, 1)")

    def delay(self, attempt: int, random_value: float) -> float:
        """Return the delay before retry number ``attempt`` (0 for the first retry).

        ``random_value`` in [0, 1] picks the point in the jitter range: 0 gives the base delay and
        1 the longest. ``random.random()`` is a suitable source.
        """
        if attempt < 0:
            raise ValueError(f"invalid backoff attempt {attempt}: must be 0 or more")
        if not 0 <= random_value <= 1:
            raise ValueError(f"invalid backoff random value {random_value}: must be in [0, 1]")

        base = self.minimum
        for _ in range(attempt):
            if base >= self.maximum:
                break
            base *= self.multiplier
        if base >= self.maximum:
            return max(self.minimum, self.maximum * (1.0 - self.jitter * random_value))
        return min(self.maximum, base * (1.0 + self.jitter * random_value))


class Backoff:
    """Attempt counter of one connection: ``next_delay`` after a failure, ``reset`` after success.

    ``random_value`` returns a value in [0, 1] for each delay. Tests pass a seeded
    ``random.Random().random`` or a constant to get known delays.
    """

    def __init__(
        self, policy: BackoffPolicy, random_value: Callable[[], float] = random.random
    ) -> None:
        self.policy = policy
        self._random_value = random_value
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """The number of delays handed out since the start or the last ``reset``."""
        return self._attempt

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        delay = self.policy.delay(self._attempt, self._random_value())
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start again from the minimum delay after a successful attempt."""
        self._attempt = 0
