"""Bounded exponential backoff with jitter for reconnect attempts."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``minimum`` up to ``maximum`` seconds, each stretched by jitter.

    The n-th delay after a success is ``minimum * 2**n`` times a random factor in [1, 1.5), never
    more than ``maximum``. The jitter keeps agents that lost the same server from reconnecting
    in step.
    """

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        if minimum <= 0 or maximum < minimum:
            raise ValueError(f"invalid backoff bounds {minimum}..{maximum} s")
        self.minimum = minimum
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        base = self.minimum * 2.0 ** min(self._attempt, 32)
        self._attempt += 1
        return min(self.maximum, base * self._rng.uniform(1.0, 1.5))

    def reset(self) -> None:
        """Start again from ``minimum`` after a successful attempt."""
        self._attempt = 0
