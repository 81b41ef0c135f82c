"""Tests of the sliding window whose mean the host adapter offers for CPU and memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.host import Headroom
from adapters.host.window import HeadroomWindow

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_window_mean_not_last_sample() -> None:
    window = HeadroomWindow(window_seconds=30, sample_interval_seconds=10)
    window.add(at(0), Headroom(cpu_free_cores=4.0, memory_available_bytes=1000))
    window.add(at(10), Headroom(cpu_free_cores=2.0, memory_available_bytes=3000))
    window.add(at(20), Headroom(cpu_free_cores=0.0, memory_available_bytes=2000))

    mean = window.mean(at(20))

    assert mean == Headroom(cpu_free_cores=2.0, memory_available_bytes=2000)


def test_window_partial_uses_existing_samples() -> None:
    window = HeadroomWindow(window_seconds=300, sample_interval_seconds=5)
    window.add(at(0), Headroom(cpu_free_cores=1.0, memory_available_bytes=10))
    window.add(at(5), Headroom(cpu_free_cores=3.0, memory_available_bytes=30))

    mean = window.mean(at(5))

    assert mean == Headroom(cpu_free_cores=2.0, memory_available_bytes=20)


def test_window_empty_returns_none() -> None:
    window = HeadroomWindow(window_seconds=60, sample_interval_seconds=5)

    assert window.mean(at(0)) is None


def test_window_drops_samples_older_than_window() -> None:
    window = HeadroomWindow(window_seconds=60, sample_interval_seconds=5)
    window.add(at(0), Headroom(cpu_free_cores=8.0, memory_available_bytes=800))
    window.add(at(50), Headroom(cpu_free_cores=2.0, memory_available_bytes=200))

    assert window.mean(at(59.9)) == Headroom(cpu_free_cores=5.0, memory_available_bytes=500)
    assert window.mean(at(60)) == Headroom(cpu_free_cores=2.0, memory_available_bytes=200)
    assert len(window) == 1
    assert window.mean(at(110)) is None


def test_window_clock_stepping_back_bounded() -> None:
    window = HeadroomWindow(window_seconds=30, sample_interval_seconds=10)
    # Three samples fit a 30 s window at 10 s intervals. A clock that stepped back an hour
    # stamps the later samples earlier, and the sample from before the step still leaves.
    window.add(at(3600), Headroom(cpu_free_cores=9.0, memory_available_bytes=900))
    for step, cores in enumerate([1.0, 2.0, 3.0]):
        window.add(at(step * 10), Headroom(cpu_free_cores=cores, memory_available_bytes=0))

    mean = window.mean(at(20))

    assert len(window) == 3
    assert mean is not None
    assert mean.cpu_free_cores == pytest.approx(2.0)
