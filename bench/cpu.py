"""CPU per request of a gateway process: a figure that other load on the machine barely moves.

``python -m bench.cpu [bare|default|redis] [send|info] [seconds]`` starts one server, loads it with
wrk (one thread, 16 connections; ``$BENCH_CPU_CONNECTIONS=64`` for the throughput case's two threads
and 64) and reads the server's own CPU time (user + system, from /proc, all its threads and its
writer process) across the run: microseconds of CPU per answered request, and
the req/s wrk saw. Throughput shifts with whatever else the two cores do; CPU per request much less,
so this is what to compare while changing the request path (``make bench`` gives the ratios).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from bench.servers import (
    BENCH_KEY,
    BENCH_SECRET,
    Server,
    gateway_document,
    redis_server,
    start_bare,
    start_gateway,
)
from bench.throughput import redis_document
from bench.wrk import Load, run_wrk

__all__ = ["PATHS", "measure"]

PATHS = {"send": "/api/sms/send", "info": "/api/account/info"}


def measure(server: Server, path: str, seconds: float) -> dict[str, float]:
    # $BENCH_CPU_CONNECTIONS: 16 by default; 64 (with two wrk threads) is the throughput case's load.
    connections = int(os.environ.get("BENCH_CPU_CONNECTIONS", "16"))
    load = Load(
        server.url, BENCH_KEY, BENCH_SECRET, threads=1 if connections <= 16 else 2, connections=connections
    )
    run_wrk(load, 2, path)  # warm-up
    before = server.cpu_seconds()
    result = run_wrk(load, seconds, path)
    used = server.cpu_seconds() - before
    answered = result.requests - result.non_2xx
    return {
        "rps": round(result.rps, 1),
        "cpu_us_per_request": round(used / answered * 1e6, 1) if answered else float("nan"),
        "non_2xx": result.non_2xx,
    }


def main(argv: list[str]) -> int:
    case = argv[0] if argv else "default"
    path = PATHS[argv[1] if len(argv) > 1 else "send"]
    seconds = float(argv[2]) if len(argv) > 2 else 5.0
    with tempfile.TemporaryDirectory(prefix="smsedge-cpu-") as name, contextlib.ExitStack() as stack:
        tmp = Path(name)
        if case == "bare":
            server = start_bare(tmp)
        elif case == "redis":
            document, _ = redis_document(tmp, stack.enter_context(redis_server(tmp, "everysec")))
            server = start_gateway(tmp, "redis", document)
        else:
            server = start_gateway(tmp, "default", gateway_document(tmp, "default"))
        stack.callback(server.stop)
        print(case, path, measure(server, path, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
