"""What a run does, from the environment: ``BENCH_DURATION=3 make bench`` is a quick run."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    duration: float = 10.0  # BENCH_DURATION: seconds per wrk round
    warmup: float = 3.0  # BENCH_WARMUP: seconds of wrk per server before the first round
    rounds: int = 3  # BENCH_ROUNDS: bare, default, redis, repeated
    threads: int = 1  # BENCH_THREADS: wrk -t (one: on two cores a second takes the server's core)
    connections: int = 32  # BENCH_CONNECTIONS: wrk -c
    batch_requests: int = 200  # BENCH_BATCH_REQUESTS: batch-sends of 100 numbers, after 10 warm-up
    batch_concurrency: int = 4  # BENCH_BATCH_CONCURRENCY
    carrier_latency_ms: float = 50.0  # BENCH_CARRIER_LATENCY_MS
    records: int = 1_000_000  # BENCH_RECORDS: rows of one account
    records_requests: int = 300  # BENCH_RECORDS_REQUESTS: queries, after 20 warm-up
    records_concurrency: int = 1  # BENCH_RECORDS_CONCURRENCY
    rss_first: int = 20_000  # BENCH_RSS_FIRST: sends before the first reading
    rss_total: int = 200_000  # BENCH_RSS_TOTAL: sends before the second reading
    rss_pool: int = 20_000  # BENCH_RSS_POOL: distinct numbers the memory case cycles through
    redis_fsync: str = "everysec"  # BENCH_REDIS_FSYNC: Redis appendfsync (always, everysec, no)
    callback_slow_seconds: float = 3.0  # BENCH_CALLBACK_SLOW_SECONDS: the slow receiver's answer time
    callback_other_rate: float = 20.0  # BENCH_CALLBACK_OTHER_RATE: the other account's sends/s
    profile_seconds: float = 10.0  # BENCH_PROFILE_SECONDS: py-spy sampling time
    tmp: str = ""  # BENCH_TMP: keep configs, DBs, logs, raw profiles there (default: a /tmp dir, removed)

    @classmethod
    def from_env(cls) -> Settings:
        values = {}
        for spec in fields(cls):
            raw = os.environ.get(f"BENCH_{spec.name.upper()}")
            if raw is not None:
                kind = type(getattr(cls(), spec.name))
                values[spec.name] = kind(raw)
        return cls(**values)

    def public(self) -> dict[str, object]:
        """The settings as recorded in results.json (the temporary directory is not a setting)."""
        return {k: v for k, v in asdict(self).items() if k != "tmp"}

    def temp_root(self) -> Path | None:
        return Path(self.tmp) if self.tmp else None
