"""The shared reconnect backoff: growth, cap, jitter, reset and invalid settings."""

from __future__ import annotations

import random

import pytest

from kooperant.backoff import Backoff, BackoffPolicy


def test_policy_delay_doubles_up_to_maximum() -> None:
    policy = BackoffPolicy(minimum=1.0, maximum=60.0, jitter=0.2)

    delays = [policy.delay(attempt, 0.0) for attempt in range(8)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_policy_delay_uses_multiplier() -> None:
    policy = BackoffPolicy(minimum=0.5, maximum=100.0, multiplier=3.0, jitter=0.0)

    assert [policy.delay(attempt, 0.0) for attempt in range(4)] == [0.5, 1.5, 4.5, 13.5]


def test_policy_delay_jitter_range() -> None:
    policy = BackoffPolicy(minimum=1.0, maximum=60.0, jitter=0.2)

    assert policy.delay(0, 0.0) == 1.0
    assert policy.delay(0, 0.5) == pytest.approx(1.1)
    assert policy.delay(0, 1.0) == pytest.approx(1.2)
    assert policy.delay(4, 1.0) == pytest.approx(19.2)
    assert policy.delay(10, 1.0) == pytest.approx(48.0)
    assert policy.delay(10_000, 0.0) == 60.0


def test_policy_delay_never_above_maximum() -> None:
    policy = BackoffPolicy(minimum=0.5, maximum=4.0, jitter=0.5)
    rng = random.Random(1)

    for attempt in [*range(20), 1_000_000]:
        base = min(4.0, 0.5 * 2.0 ** min(attempt, 10))
        delay = policy.delay(attempt, rng.random())
        assert delay <= 4.0
        assert delay >= min(base, 4.0 * (1 - 0.5))


def test_policy_delays_at_maximum_keep_jitter() -> None:
    policy = BackoffPolicy(minimum=1.0, maximum=60.0, jitter=0.2)
    rng = random.Random(3)

    delays = [policy.delay(100, rng.random()) for _ in range(100)]

    assert min(delays) >= 48.0
    assert max(delays) <= 60.0
    assert max(delays) - min(delays) > 6.0


def test_policy_delay_at_maximum_not_below_minimum() -> None:
    policy = BackoffPolicy(minimum=5.0, maximum=5.0, jitter=0.5)

    assert policy.delay(3, 1.0) == 5.0


def test_policy_delay_without_jitter_is_exact() -> None:
    policy = BackoffPolicy(minimum=2.0, maximum=2.0, jitter=0.0)

    assert policy.delay(0, 0.0) == 2.0
    assert policy.delay(5, 1.0) == 2.0


def test_policy_huge_multiplier_does_not_overflow() -> None:
    policy = BackoffPolicy(minimum=1.0, maximum=30.0, multiplier=1e300)

    assert policy.delay(1_000, 0.5) == pytest.approx(27.0)


@pytest.mark.parametrize(
    ("attempt", "random_value", "value"),
    [(-1, 0.5, "-1"), (0, -0.1, "-0.1"), (0, 1.5, "1.5")],
)
def test_policy_delay_invalid_arguments(attempt: int, random_value: float, value: str) -> None:
    policy = BackoffPolicy(minimum=1.0, maximum=2.0)

    with pytest.raises(ValueError, match="invalid backoff") as raised:
        policy.delay(attempt, random_value)
    assert value in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"minimum": 0.0, "maximum": 1.0}, "minimum delay 0.0 s must be above 0"),
        ({"minimum": -1.0, "maximum": 1.0}, "minimum delay -1.0 s must be above 0"),
        ({"minimum": 5.0, "maximum": 1.0}, "maximum delay 1.0 s is below the minimum delay 5.0 s"),
        ({"minimum": 1.0, "maximum": 2.0, "jitter": 1.0}, "jitter 1.0 must be in [0, 1)"),
        ({"minimum": 1.0, "maximum": 2.0, "jitter": -0.1}, "jitter -0.1 must be in [0, 1)"),
        ({"minimum": 1.0, "maximum": 2.0, "multiplier": 0.5}, "multiplier 0.5 must be at least 1"),
        ({"minimum": float("nan"), "maximum": 2.0}, "minimum delay nan s must be above 0"),
    ],
)
def test_policy_invalid_bounds(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        BackoffPolicy(**settings)
    assert str(raised.value) == f"invalid backoff: {message}"


def test_backoff_next_delay_counts_attempts() -> None:
    backoff = Backoff(BackoffPolicy(minimum=1.0, maximum=10.0), lambda: 0.0)

    delays = [backoff.next_delay() for _ in range(6)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.attempt == 6


def test_backoff_reset_starts_again() -> None:
    backoff = Backoff(BackoffPolicy(minimum=1.0, maximum=10.0), lambda: 0.0)
    for _ in range(4):
        backoff.next_delay()

    backoff.reset()

    assert backoff.attempt == 0
    assert backoff.next_delay() == 1.0


def test_backoff_seeded_random_is_repeatable() -> None:
    policy = BackoffPolicy(minimum=1.0, maximum=10.0)
    first = Backoff(policy, random.Random(7).random)
    second = Backoff(policy, random.Random(7).random)

    delays = [first.next_delay() for _ in range(6)]

    assert delays == [second.next_delay() for _ in range(6)]
    assert len(set(delays[:4])) == 4, "jitter should vary the delays below the cap"
    for attempt, delay in enumerate(delays):
        base = 2.0**attempt
        if base < 10.0:
            assert base <= delay <= min(10.0, base * 1.2)
        else:
            assert 10.0 * 0.8 <= delay <= 10.0
