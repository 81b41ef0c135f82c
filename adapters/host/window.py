"""The sliding window of CPU and memory samples whose mean the ``host`` adapter offers.

A single sample shows a burst or a pause of the host's own work. The mean over a few minutes
shows a buyer what was free on average, which is what a job of theirs would meet.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Headroom:
    """Free logical cores and available memory in bytes, at one moment or as a mean."""

    cpu_free_cores: float
    memory_available_bytes: float


class HeadroomWindow:
    """The samples of the last ``window_seconds`` and their mean.

    A sample counts while it is less than ``window_seconds`` old. The number of samples kept is
    bounded by the window divided by the sample interval, so a wall clock that steps back does
    not make old samples count for longer than the window.
    """

    def __init__(self, window_seconds: float, sample_interval_seconds: float) -> None:
        self._length = timedelta(seconds=window_seconds)
        max_samples = math.ceil(window_seconds / sample_interval_seconds)
        self._samples: deque[tuple[datetime, Headroom]] = deque(maxlen=max_samples)

    def add(self, taken_at: datetime, sample: Headroom) -> None:
        """Add ``sample``, taken at ``taken_at``."""
        self._samples.append((taken_at, sample))

    def mean(self, now: datetime) -> Headroom | None:
        """Return the mean of the samples taken within the window before ``now``.

        Before the window has filled, the mean covers the samples there are. ``None`` when no
        sample is recent enough.
        """
        oldest = now - self._length
        while self._samples and self._samples[0][0] <= oldest:
            self._samples.popleft()
        if not self._samples:
            return None

        count = len(self._samples)
        cores = sum(sample.cpu_free_cores for _, sample in self._samples) / count
        memory = sum(sample.memory_available_bytes for _, sample in self._samples) / count
        return Headroom(cpu_free_cores=cores, memory_available_bytes=memory)

    def __len__(self) -> int:
        return len(self._samples)
