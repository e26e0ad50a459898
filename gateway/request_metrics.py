"""``smsedge_http_requests_total`` and ``smsedge_http_request_duration_seconds`` without a lock.

Every request records both, so they are the metrics' hot path. prometheus-client's own children
take a lock for each increment, to be safe across threads; here one event loop is the only writer,
so plain integers and floats in slotted objects do, and a custom collector turns them into the same
families when /metrics is read. With several workers (prometheus-client's multiprocess mode) each
value must live in the worker's shared file instead, so there the library's own metrics are used.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["LockFreeRequests", "LockedRequests"]

_REQUESTS = "smsedge_http_requests_total", "HTTP requests answered."
_DURATION = "smsedge_http_request_duration_seconds", "Time to answer an HTTP request."


class _Latencies:
    """One (method, route)'s histogram: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.total = 0.0


class LockFreeRequests(Collector):
    """The two request metrics, written by one event loop and read by the registry."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        self._bounds = tuple(buckets)
        self._answered: dict[tuple[str, str, int], list[int]] = {}  # (method, route, status) -> [n]
        self._latencies: dict[tuple[str, str], _Latencies] = {}
        registry.register(self)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        answered = self._answered.get((method, route, status))
        if answered is None:
            answered = self._answered[method, route, status] = [0]
        answered[0] += 1
        latencies = self._latencies.get((method, route))
        if latencies is None:
            latencies = self._latencies[method, route] = _Latencies(len(self._bounds))
        latencies.counts[bisect.bisect_left(self._bounds, seconds)] += 1  # buckets are "<= bound"
        latencies.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(*_REQUESTS, labels=["method", "route", "status"])
        for (method, route, status), answered in list(self._answered.items()):
            requests.add_metric([method, route, str(status)], answered[0])
        duration = HistogramMetricFamily(*_DURATION, labels=["method", "route"])
        for (method, route), latencies in list(self._latencies.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*self._bounds, float("inf")), latencies.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            duration.add_metric([method, route], buckets, latencies.total)
        yield requests
        yield duration

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(*_REQUESTS, labels=["method", "route", "status"])
        yield HistogramMetricFamily(*_DURATION, labels=["method", "route"])


class LockedRequests:
    """The same two metrics as prometheus-client's own, for its multiprocess mode."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        self._requests = Counter(*_REQUESTS, ["method", "route", "status"], registry=registry)
        self._duration = Histogram(*_DURATION, ["method", "route"], buckets=buckets, registry=registry)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[method, route, status] = (
                self._requests.labels(method, route, str(status)),
                self._duration.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)
