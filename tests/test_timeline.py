"""The status page's per-minute ring buffer and the charts drawn from it, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from gateway.status.charts import HEIGHT, WIDTH, charts
from gateway.status.timeline import MINUTES, Timeline
from tests.conftest import FakeClock

START = 1_700_000_040.0  # a whole minute


def test_counts_land_in_the_current_minute():
    timeline = Timeline(FakeClock(START + 5))
    for status in (200, 201, 404, 500, 502):
        timeline.request(status)
    timeline.carrier_call(0.010)
    timeline.carrier_call(0.030)
    minutes = timeline.minutes()
    assert len(minutes) == MINUTES == 30
    now = minutes[-1]
    assert (now.start, now.requests, now.errors, now.carrier_calls) == (START, 5, 2, 2)
    assert now.carrier_avg_ms == pytest.approx(20.0)
    assert all(m.requests == m.errors == m.carrier_calls == 0 for m in minutes[:-1])
    assert all(m.carrier_avg_ms is None for m in minutes[:-1])
    assert [m.start for m in minutes] == [START - 60 * (29 - i) for i in range(30)]


def test_rolling_moves_counts_back_one_minute_at_a_time():
    clock = FakeClock(START)
    timeline = Timeline(clock)
    timeline.request(200)
    clock.advance(59.9)
    timeline.roll()  # still the same minute
    timeline.request(200)
    clock.advance(0.1)
    timeline.roll()
    timeline.request(503)
    clock.advance(120)
    minutes = timeline.minutes()
    assert [(m.requests, m.errors) for m in minutes[-4:]] == [(2, 0), (1, 1), (0, 0), (0, 0)]
    assert minutes[-1].start == START + 180


def test_a_count_older_than_the_window_is_forgotten():
    clock = FakeClock(START)
    timeline = Timeline(clock)
    timeline.request(200)
    clock.advance(29 * 60)
    assert timeline.minutes()[0].requests == 1  # 29 minutes ago: the oldest bucket
    clock.advance(60)
    assert sum(m.requests for m in timeline.minutes()) == 0


def test_a_long_pause_empties_every_bucket():
    clock = FakeClock(START)
    timeline = Timeline(clock)
    for _ in range(3):
        timeline.request(500)
        timeline.carrier_call(1.0)
        clock.advance(60)
        timeline.roll()
    clock.advance(6 * 3600 + 17)
    minutes = timeline.minutes()
    assert sum(m.requests + m.errors + m.carrier_calls for m in minutes) == 0
    assert minutes[-1].start == START + 3 * 60 + 6 * 3600


async def test_run_rolls_on_the_minute_boundary():
    clock = FakeClock(START + 59.95)  # 50 ms before the next minute
    timeline = Timeline(clock)
    timeline.request(200)
    task = asyncio.create_task(timeline.run())
    await asyncio.sleep(0.01)
    clock.advance(0.05)
    await asyncio.sleep(0.1)
    timeline.request(200)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    minutes = timeline._ring  # what run() rolled, read without minutes()' own roll
    assert [(b.minute, b.requests) for b in minutes[-2:]] == [(START // 60, 1), (START // 60 + 1, 1)]


def test_charts_have_a_point_per_minute_and_break_where_no_carrier_was_called():
    clock = FakeClock(START)
    timeline = Timeline(clock)
    timeline.carrier_call(0.050)
    timeline.request(200)
    clock.advance(120)
    timeline.roll()
    timeline.carrier_call(0.010)
    timeline.carrier_call(0.030)
    for _ in range(4):
        timeline.request(200)
    requests, errors, latency = charts(timeline.minutes())
    assert len(requests.points) == len(errors.points) == 30
    assert requests.path.startswith("M0.0 ") and requests.path.count("L") == 29
    assert requests.points[-1] == (WIDTH, 4.0) and requests.points[-3][1] == pytest.approx(HEIGHT - 19)
    assert requests.latest == "4 次" and requests.total == "5 次" and requests.peak == "4"
    assert errors.path.count("L") == 29 and errors.peak == "0" and {y for _, y in errors.points} == {HEIGHT}
    # Two minutes with calls, one without between them: two separate segments, no line to zero.
    assert len(latency.points) == 2 and latency.path.count("M") == 2 and "L" not in latency.path
    assert latency.latest == "20.0 ms" and latency.total == "30.0 ms" and latency.peak == "50"


def test_charts_of_an_idle_gateway_are_flat_and_latency_is_empty():
    requests, errors, latency = charts(Timeline(FakeClock(START)).minutes())
    assert requests.peak == errors.peak == "0" and len(requests.points) == 30
    assert latency.path == "" and latency.points == () and latency.latest == latency.total == "—"
