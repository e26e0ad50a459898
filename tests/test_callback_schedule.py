"""The callbacks' retry schedule (docs/callbacks.md, "Retries"): about 10 s, 1 min, 5 min, 30 min, 2 h,
6 h, then every 6 h, each ±20 %, until 24 h after the event was created, then dead. The expected
times below are worked out by hand from those figures, not by the code under test."""

from __future__ import annotations

import random

import pytest

from gateway.callbacks.schedule import DEAD_AFTER_SECONDS, next_attempt_ms, next_delay

HOUR_MS = 3_600_000


class FixedJitter(random.Random):
    """A random source whose jitter is always the same factor of the nominal delay."""

    def __init__(self, factor: float) -> None:
        super().__init__(0)
        self.factor = factor

    def uniform(self, a: float, b: float) -> float:
        assert (a, b) == (0.8, 1.2)
        return self.factor


@pytest.mark.parametrize(
    ("attempts", "nominal"),
    [(1, 10), (2, 60), (3, 300), (4, 1800), (5, 7200), (6, 21600), (7, 21600), (8, 21600), (100, 21600)],
)
def test_next_delay_follows_the_nominal_schedule(attempts, nominal):
    assert [next_delay(attempts, FixedJitter(f)) for f in (0.8, 1.0, 1.2)] == pytest.approx(
        [nominal * 0.8, nominal, nominal * 1.2]
    )


@pytest.mark.parametrize("attempts", [1, 2, 3, 4, 5, 6, 7])
def test_next_delay_jitters_within_twenty_percent_and_spreads(attempts):
    nominal = next_delay(attempts, FixedJitter(1.0))
    rng = random.Random(25)
    delays = [next_delay(attempts, rng) for _ in range(500)]
    spread = (min(delays) / nominal, max(delays) / nominal)
    assert 0.8 <= spread[0] < 0.82 and 1.18 < spread[1] <= 1.2


def test_next_delay_is_reproducible_from_a_seed():
    first, again = random.Random(7), random.Random(7)
    assert [next_delay(n, first) for n in range(1, 10)] == [next_delay(n, again) for n in range(1, 10)]


@pytest.mark.parametrize("attempts", [0, -1])
def test_next_delay_needs_a_failed_attempt(attempts):
    with pytest.raises(ValueError, match="attempt"):
        next_delay(attempts, random.Random(0))


@pytest.mark.parametrize(
    ("case", "created_ms", "attempts", "now_ms", "due"),
    [
        ("first failure", 1_000, 1, 1_000, 11_000),
        ("later failure", 0, 3, 70_000, 370_000),
        ("every 6 h", 0, 9, 10 * HOUR_MS, 16 * HOUR_MS),
        ("clipped to the deadline", 0, 9, 20 * HOUR_MS, 24 * HOUR_MS),
        ("just before the deadline", 0, 9, 24 * HOUR_MS - 1, 24 * HOUR_MS),
        ("at the deadline: dead", 0, 10, 24 * HOUR_MS, None),
        ("past the deadline: dead", 0, 10, 30 * HOUR_MS, None),
    ],
)
def test_next_attempt_ms(case, created_ms, attempts, now_ms, due):
    assert next_attempt_ms(created_ms, attempts, now_ms, FixedJitter(1.0)) == due, case


def _attempt_times(factor: float) -> list[int]:
    """When a receiver that always fails is tried (seconds after creation), each retry at its due time."""
    created_ms, now_ms, times = 5_000, 5_000, []
    while True:
        times.append((now_ms - created_ms) // 1000)
        due = next_attempt_ms(created_ms, len(times), now_ms, FixedJitter(factor))
        if due is None:
            return times
        now_ms = due


@pytest.mark.parametrize(
    ("factor", "times"),
    [
        (1.0, [0, 10, 70, 370, 2170, 9370, 30970, 52570, 74170, 86400]),
        (0.8, [0, 8, 56, 296, 1736, 7496, 24776, 42056, 59336, 76616, 86400]),
        (1.2, [0, 12, 84, 444, 2604, 11244, 37164, 63084, 86400]),
    ],
)
def test_a_receiver_that_never_answers_is_tried_until_24_hours_then_dead(factor, times):
    assert (DEAD_AFTER_SECONDS, _attempt_times(factor)) == (86400, times)


def test_seeded_attempts_stay_within_the_jittered_bounds():
    rng, now_ms, tried = random.Random(2025), 0, 1  # created at 0, the first POST failed at once
    while (due := next_attempt_ms(0, tried, now_ms, rng)) is not None:
        assert now_ms < due <= DEAD_AFTER_SECONDS * 1000
        now_ms, tried = due, tried + 1
    assert (9 <= tried <= 11, now_ms) == (True, DEAD_AFTER_SECONDS * 1000)
