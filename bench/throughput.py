"""Requests/s of POST /api/sms/send (bare aiohttp, the gateway on the embedded default, on Redis,
on a Redis primary whose replica confirms every store write: ``redis.wait_replicas: 1``) and of
GET /api/account/info on the embedded default.

The servers run side by side and wrk drives them in alternating rounds (bare, default, redis,
redis_wait, info, bare, …), so drift in the machine's load touches every case alike; each case's
ratio to bare is the median of its per-round ratios. Every send goes to a number never used before
in the run, so the shipped per-number windows (1/60 s, 5/h, 10/day) stay on without refusing
anything. Each round also reads the server's CPU time (all its threads, /proc): microseconds of CPU
per answered request.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from bench.servers import (
    BENCH_KEY,
    BENCH_SECRET,
    Server,
    check_config,
    gateway_document,
    redis_server,
    start_bare,
    start_gateway,
)
from bench.settings import Settings
from bench.stats import median
from bench.wrk import Load, WrkResult, run_wrk

__all__ = ["INFO", "SEND", "redis_document", "run"]

SEND, INFO = "/api/sms/send", "/api/account/info"


def redis_document(tmp: Path, url: str, wait_replicas: int = 0) -> tuple[dict[str, Any], str]:
    """The Redis case's config (store too, where the gateway accepts it) and what it covers."""
    redis = {"url": url, **({"wait_replicas": wait_replicas} if wait_replicas else {})}
    limiter_only = gateway_document(tmp, "redis", ratelimit={"backend": "redis"}, redis=redis)
    both = gateway_document(
        tmp, "redis", ratelimit={"backend": "redis"}, redis=redis, store={"backend": "redis"}
    )
    refusal = check_config(tmp, "redis-check", both)
    if refusal is None:
        return both, "rate limiter and store on Redis"
    return limiter_only, f"rate limiter on Redis, store on SQLite (store.backend redis refused: {refusal})"


def _load(server: Server, settings: Settings) -> Load:
    return Load(server.url, BENCH_KEY, BENCH_SECRET, settings.threads, settings.connections)


def _case(rounds_cpu: list[tuple[WrkResult, float]], bare: list[WrkResult]) -> dict[str, Any]:
    rounds = [r for r, _ in rounds_cpu]
    return {
        "rps": round(median([r.rps for r in rounds]), 1),
        "p50_ms": round(median([r.p50_ms for r in rounds]), 2),
        "p99_ms": round(median([r.p99_ms for r in rounds]), 2),
        "ratio": round(median([r.rps / b.rps for r, b in zip(rounds, bare, strict=True)]), 3),
        "non_2xx": sum(r.non_2xx for r in rounds),
        "socket_errors": sum(r.socket_errors for r in rounds),
        "cpu_us_per_request": round(median([cpu for _, cpu in rounds_cpu]), 1),
        "rounds": [{**r.summary(), "cpu_us_per_request": cpu} for r, cpu in rounds_cpu],
    }


def _round(server: Server, path: str, settings: Settings) -> tuple[WrkResult, float]:
    """One wrk run, and the server's CPU microseconds per answered request during it."""
    before = server.cpu_seconds()
    result = run_wrk(_load(server, settings), settings.duration, path)
    answered = max(1, result.requests - result.non_2xx)
    return result, round((server.cpu_seconds() - before) / answered * 1e6, 1)


def run(settings: Settings, tmp: Path) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(tmp, settings.redis_fsync))
        document, redis_note = redis_document(tmp, redis_url)
        primary = stack.enter_context(redis_server(tmp, settings.redis_fsync, "redis-primary"))
        stack.enter_context(redis_server(tmp, settings.redis_fsync, "redis-replica", replica_of=primary))
        waiting, _ = redis_document(tmp, primary, wait_replicas=1)
        servers: dict[str, Server] = {}
        for name, start in (
            ("bare", lambda: start_bare(tmp)),
            ("default", lambda: start_gateway(tmp, "default", gateway_document(tmp, "default"))),
            ("redis", lambda: start_gateway(tmp, "redis", document)),
            ("redis_wait", lambda: start_gateway(tmp, "redis-wait", waiting)),
        ):
            servers[name] = start()
            stack.callback(servers[name].stop)
        plan = {
            **{name: (server, SEND) for name, server in servers.items()},
            "info": (servers["default"], INFO),
        }
        for server, path in plan.values():  # warm-up: first connections, caches
            run_wrk(_load(server, settings), settings.warmup, path)
        rounds: dict[str, list[tuple[WrkResult, float]]] = {name: [] for name in plan}
        for number in range(settings.rounds):
            for name, (server, path) in plan.items():
                rounds[name].append(_round(server, path, settings))
                result, cpu = rounds[name][-1]
                print(
                    f"  round {number + 1} {name:8} {result.rps:9.1f} req/s  p99 {result.p99_ms} ms"
                    f"  {cpu} us CPU/request",
                    flush=True,
                )
    bare = [result for result, _ in rounds["bare"]]
    cases = {name: _case(results, bare) for name, results in rounds.items()}
    return {
        "cases": cases,
        "redis_covers": redis_note,
        "redis_persistence": f"appendonly yes, appendfsync {settings.redis_fsync}",
        "redis_wait_covers": "the Redis case on a primary of its own with one replica (both on this"
        " machine), redis.wait_replicas: 1",
        "command": rounds["default"][0][0].command,
        "gateway_command": "python run.py serve --config <tmp>/default.yaml --port <port>",
    }
