"""Percentiles and medians, the way every case reports them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["latency_summary", "median", "percentile"]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0-100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """p50/p90/p99/max in milliseconds of a sample of durations in seconds."""
    ms = [value * 1000 for value in seconds]
    return {
        "requests": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }
