"""Prometheus metrics on an explicit registry, with the contract's names (docs/api.md, "Metrics").

Labels are bounded by construction: routes are templates, methods a fixed set, providers the
configured names. Label children are cached, so recording a request allocates nothing new.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.request_metrics import LockedRequests, LockFreeRequests
from gateway.store.quotas import PERIODS

__all__ = ["PULL_RESULTS", "Metrics"]

# From a millisecond to ten seconds: a gateway answers in ms, a slow carrier in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# What became of a delivery callback POST: delivered (a 2xx), retried (to be tried again later),
# dead (given up after 24 h) or refused (a 410: that URL's events for the record stop).
CALLBACK_OUTCOMES = ("delivered", "retried", "dead", "refused")


def _exposition(registry: CollectorRegistry) -> CollectorRegistry:
    """What /metrics serves: this registry, or — with several workers (prometheus-client's
    multiprocess mode, set up by gateway.process.server) — every worker's values, read from their files."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return registry
    every_worker = CollectorRegistry()
    MultiProcessCollector(every_worker)
    return every_worker


#: What became of a record asked about because its receipt is late (``gateway.billing.pull``).
PULL_RESULTS = ("answered", "unanswered", "error", "given_up")


class Metrics:
    def __init__(self, providers: list[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.exposition = _exposition(self.registry)
        # Unbounded label sets are impossible (see the module), so children are kept, not evicted.
        requests = LockedRequests if self.exposition is not self.registry else LockFreeRequests
        self._requests = requests(self.registry, LATENCY_BUCKETS)
        self.messages = Counter(
            "smsedge_sms_messages_total",
            "Messages by final carrier answer, one per number.",
            ["provider", "status"],
            registry=self.registry,
        )
        self.route_decisions = Counter(
            "smsedge_route_decisions_total",
            'Numbers sent the way a route chose (route "requested": the caller named the provider; '
            '"default": no route matched), by the provider chosen.',
            ["route", "provider"],
            registry=self.registry,
        )
        self.provider_duration = Histogram(
            "smsedge_provider_request_duration_seconds",
            "Upstream carrier calls.",
            ["provider", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ratelimit_rejections = Counter(
            "smsedge_ratelimit_rejections_total",
            "Requests or numbers refused by a rate limit.",
            ["scope"],
            registry=self.registry,
        )
        self.ratelimit_backend_errors = Counter(
            "smsedge_ratelimit_backend_errors_total",
            "Rate-limit decisions the backend could not make (then on_backend_error applies).",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "smsedge_auth_failures_total", "Requests refused with 401.", registry=self.registry
        )
        self.circuit_open = Gauge(
            "smsedge_provider_circuit_open",
            "1 while a carrier's circuit breaker is open.",
            ["provider"],
            registry=self.registry,
            multiprocess_mode="livemax",  # open in any live worker: open
        )
        self.segment_mismatches, self.status_pulls = self._billing_metrics(providers)
        self._quota_refusals = self._quota_metrics()
        self.config_reloads, self.config_loaded_at = self._config_metrics()
        self._callback_outcomes, self._callback_depth, self._callback_age = self._callback_metrics()
        for provider in providers:
            self.circuit_open.labels(provider).set(0)
        for scope in ("account", "phone"):
            self.ratelimit_rejections.labels(scope)
        # Children are looked up once per label set and reused: ``labels()`` takes a lock and
        # builds a tuple each time, a dict lookup does neither.
        self._message_children: dict[str, tuple[Counter, Counter]] = {}
        self._provider_children: dict[tuple[str, str], Histogram] = {}
        self._rejection_children: dict[str, Counter] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.observe(method if method in METHODS else "OTHER", route, status, seconds)

    def observe_messages(self, provider: str, accepted: int, refused: int) -> None:
        children = self._message_children.get(provider)
        if children is None:
            children = self._message_children[provider] = (
                self.messages.labels(provider, "success"),
                self.messages.labels(provider, "failed"),
            )
        if accepted:
            children[0].inc(accepted)
        if refused:
            children[1].inc(refused)

    def observe_provider_call(self, provider: str, outcome: str, seconds: float) -> None:
        child = self._provider_children.get((provider, outcome))
        if child is None:
            child = self._provider_children[provider, outcome] = self.provider_duration.labels(
                provider, outcome
            )
        child.observe(seconds)

    def _config_metrics(self) -> tuple[Counter, Gauge]:
        """Reloads (gateway.process.reload): how many were applied or refused, and when the last took."""
        reloads = Counter(
            "smsedge_config_reloads_total",
            "Config reloads (SIGHUP) applied or refused.",
            ["result"],
            registry=self.registry,
        )
        for result in ("ok", "error"):
            reloads.labels(result)
        loaded_at = Gauge(
            "smsedge_config_last_reload_success_timestamp_seconds",
            "When the config now serving was loaded (start or the last good reload).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        return reloads, loaded_at

    def _billing_metrics(self, providers: list[str]) -> tuple[Counter, Counter]:
        """Billing (``gateway.billing``): counts the carriers disagree on, and the status pull;
        every provider's shown from the start."""
        mismatches = Counter(
            "smsedge_segment_mismatch_total",
            "Messages a carrier billed as another number of segments than the gateway counted"
            " (the template's text in the config is out of date or missing).",
            ["provider"],
            registry=self.registry,
        )
        pulls = Counter(
            "smsedge_status_pull_records_total",
            "Records whose late receipt was asked of the carrier, by result: answered (a final"
            " status came back), unanswered, error (the query failed), given_up (give_up_after).",
            ["provider", "result"],
            registry=self.registry,
        )
        for provider in providers:
            mismatches.labels(provider)
            for result in PULL_RESULTS:
                pulls.labels(provider, result)
        return mismatches, pulls

    def _quota_metrics(self) -> dict[str, Counter]:
        """Sends the account's daily or monthly limit refused (429 ``QUOTA_EXCEEDED``)."""
        refusals = Counter(
            "smsedge_quota_refusals_total",
            "Send requests refused by an account's message limit (a batch counts once), by period:"
            " daily or monthly.",
            ["period"],
            registry=self.registry,
        )
        return {period: refusals.labels(period) for period in PERIODS}

    def quota_refused(self, period: str) -> None:
        """One send refused by the account's ``period`` limit (daily, monthly)."""
        self._quota_refusals[period].inc()

    def _callback_metrics(self) -> tuple[dict[str, Counter], Gauge, Gauge]:
        """Delivery callbacks: each POST's outcome, and the outbox's backlog as the deliverer reads it.

        The backlog is the store's, the same for every worker, each reading it at its own moment:
        ``livemax`` shows it once, as the largest reading of a live worker. A worker just started
        (still 0) or one whose reading is a poll older can then never hide a backlog ("mostrecent"
        would show that 0 until the next reading); a dead worker's reading goes with it."""
        outcomes = Counter(
            "smsedge_callbacks_total",
            "Delivery callback POSTs by outcome: delivered (2xx), retried, dead (given up), refused (410).",
            ["outcome"],
            registry=self.registry,
        )
        depth = Gauge(
            "smsedge_callback_queue_depth",
            "Callback events waiting to be delivered (pending in the outbox).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        age = Gauge(
            "smsedge_callback_oldest_age_seconds",
            "Age of the oldest callback event still waiting to be delivered (0 when none is).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        return {outcome: outcomes.labels(outcome) for outcome in CALLBACK_OUTCOMES}, depth, age

    def callback_outcome(self, outcome: str) -> None:
        """One callback POST's outcome (one of ``CALLBACK_OUTCOMES``)."""
        self._callback_outcomes[outcome].inc()

    def callback_backlog(self, depth: int, oldest_age_seconds: float) -> None:
        """The deliverer's latest reading of the outbox (``store.callback_backlog``)."""
        self._callback_depth.set(depth)
        self._callback_age.set(oldest_age_seconds)

    def config_loaded(self) -> None:
        self.config_loaded_at.set_to_current_time()

    def reload_result(self, result: str) -> None:
        self.config_reloads.labels(result).inc()
        if result == "ok":
            self.config_loaded()

    def reject(self, scope: str) -> None:
        """One request or number refused by a rate limit (``scope``: account or phone)."""
        child = self._rejection_children.get(scope)
        if child is None:
            child = self._rejection_children[scope] = self.ratelimit_rejections.labels(scope)
        child.inc()
