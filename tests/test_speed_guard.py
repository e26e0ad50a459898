"""The one coarse speed check in the suite: a send on the embedded default stays above a floor
relative to bare aiohttp on the same machine, in the same run (``make bench`` holds the figures).

Bare aiohttp and a gateway process run side by side; wrk drives them in alternating 3-second rounds,
and the median ratio of the rounds must stay at or above ``FLOOR``. A ratio, not a rate, so a slower
or busier machine moves both sides alike.

The floor is below what issue 22 asks (0.20 x): after the request path's reshape the send measures
0.147-0.174 x with these settings on the 2-core machine of docs/benchmarks.md, against 0.110-0.122 x
for the path before it (bd84868) in the same hour, and the guard must pass on a busier machine too.
At 0.11 x it catches a fall back to the cost before the reshape, not a slide of a few percent.
"""

from __future__ import annotations

import contextlib
import statistics
from pathlib import Path

import pytest

from bench.servers import BENCH_KEY, BENCH_SECRET, gateway_document, start_bare, start_gateway
from bench.wrk import Load, run_wrk

pytestmark = pytest.mark.slow  # a load run, a build or a fuzz run: seconds to minutes

FLOOR = 0.10
ROUNDS = 2
SECONDS = 3


def test_a_send_stays_above_its_floor_of_bare_aiohttp(tmp_path: Path):
    with contextlib.ExitStack() as stack:
        bare = start_bare(tmp_path)
        stack.callback(bare.stop)
        gateway = start_gateway(tmp_path, "guard", gateway_document(tmp_path, "guard"))
        stack.callback(gateway.stop)
        loads = [
            Load(server.url, BENCH_KEY, BENCH_SECRET, threads=1, connections=16) for server in (bare, gateway)
        ]
        for load in loads:
            run_wrk(load, 1)  # warm-up
        ratios = []
        for _ in range(ROUNDS):
            bare_run, gateway_run = (run_wrk(load, SECONDS) for load in loads)
            assert gateway_run.non_2xx == 0 and gateway_run.socket_errors == 0
            ratios.append(gateway_run.rps / bare_run.rps)
    assert statistics.median(ratios) >= FLOOR, f"send at {ratios} x bare aiohttp"
