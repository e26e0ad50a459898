"""Count and time every request by method, route template and final status, for Prometheus and
for the status page's charts: one observer call per request."""

from __future__ import annotations

from gateway.metrics import Metrics
from gateway.status.timeline import Timeline

__all__ = ["RequestObserver"]


class RequestObserver:
    """What the pipeline tells once a request is answered, with the status the caller sees."""

    __slots__ = ("_metrics", "_timeline")

    def __init__(self, metrics: Metrics, timeline: Timeline) -> None:
        self._metrics = metrics
        self._timeline = timeline

    def __call__(self, method: str, route: str, status: int, seconds: float) -> None:
        self._metrics.observe_request(method, route, status, seconds)
        self._timeline.request(status)
