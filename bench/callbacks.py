"""What delivery callbacks cost the send path (issue 25), on the embedded default (SQLite).

Three gateways side by side, driven by wrk in alternating rounds as the throughput case does:

- ``off``: no account has a callback URL;
- ``on``: the bench account's ``callback_url`` points at a receiver started here that answers 204 at
  once, so every send writes an outbox event and the deliverer POSTs it, signed, while wrk runs;
- ``slow``: the bench account has none, a second account's points at a receiver that answers after
  ``callback_slow_seconds``; that account sends ``callback_other_rate`` messages a second throughout.

The second account sends at that rate to every gateway while it is measured (without callbacks
elsewhere), so ``slow`` differs from ``off`` only by that account's slow receiver. Ratios are the
medians of per-round ratios to ``off``; CPU per request counts the gateway and its writer process,
not the receivers (which run on the same two cores).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.servers import (
    BENCH_KEY,
    BENCH_SECRET,
    HUGE_BUCKET,
    Server,
    gateway_document,
    run_cli,
    start_gateway,
    start_receiver,
)
from bench.settings import Settings
from bench.stats import median
from bench.wrk import Load, WrkResult, run_wrk

__all__ = ["OTHER_KEY", "run"]

SEND = "/api/sms/send"
#: A round's wrk result, CPU µs per send, the other account's sends, seconds its callbacks took after.
Round = tuple[WrkResult, float, "OtherSends", float]
OTHER_KEY, OTHER_SECRET = "sk_bench_other_000000000", "bench-other-secret-not-for-production"
OTHER_FIRST = 15_000_000_000  # 150…: outside wrk's 130-139 blocks, so no per-number window fires


class OtherSends:
    """The second account's steady trickle of sends to one gateway, from a thread, until stopped."""

    def __init__(self, server: Server, rate: float, first: int) -> None:
        self._server, self._interval, self._next = server, 1 / rate, first
        self._stop = threading.Event()
        self.sent = self.failed = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OtherSends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        headers = {"Content-Type": "application/json", "X-API-Key": OTHER_KEY, "X-API-Secret": OTHER_SECRET}
        due = time.monotonic()
        while not self._stop.is_set():
            self._next += 1
            body = json.dumps({"phone": str(self._next), "template_id": "123456", "params": {"code": "1"}})
            request = urllib.request.Request(self._server.url + SEND, body.encode(), headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
                self.sent += 1
            except (urllib.error.URLError, ConnectionError):
                self.failed += 1
            due += self._interval
            self._stop.wait(max(0.0, due - time.monotonic()))


def _document(tmp: Path, name: str, bench_url: str | None, other_url: str | None) -> dict[str, Any]:
    document = gateway_document(tmp, name)
    other = {
        "name": "bench-other",
        "api_key": OTHER_KEY,
        "api_secret": OTHER_SECRET,
        "balance": 1_000_000_000,
        "verification_status": "approved",
        "ratelimit": dict(HUGE_BUCKET),
    }
    document["accounts"].append(other)
    for account, url in zip(document["accounts"], (bench_url, other_url), strict=True):
        if url is not None:
            account["callback_url"] = url
            account["callback_prefixes"] = [url.rsplit("/", 1)[0] + "/"]
    return document


def _start(tmp: Path, name: str, bench_url: str | None, other_url: str | None) -> Server:
    """A gateway whose accounts with a callback URL also have a signing secret (set by the CLI)."""
    gateway = start_gateway(tmp, name, _document(tmp, name, bench_url, other_url))
    try:
        for key, url in ((BENCH_KEY, bench_url), (OTHER_KEY, other_url)):
            if url is not None:
                run_cli(tmp, name, "accounts", "callback-secret", "--key", key)
    except BaseException:
        gateway.stop()
        raise
    return gateway


def _received(receiver: Server) -> int:
    with urllib.request.urlopen(receiver.url + "/count", timeout=5) as answer:
        return int(answer.read())


def _metric(server: Server, name: str) -> float:
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + " "))


def _round(
    server: Server, settings: Settings, first: int, drained: Callable[[int], bool] | None = None
) -> tuple[WrkResult, float, OtherSends, float]:
    """One wrk round; with ``drained``, then wait until the receiver has this round's POSTs too,
    so delivery's whole cost falls in its own round: (result, CPU µs a send, other, drain s)."""
    load = Load(server.url, BENCH_KEY, BENCH_SECRET, settings.threads, settings.connections)
    before = server.cpu_seconds()
    with OtherSends(server, settings.callback_other_rate, first) as other:
        result = run_wrk(load, settings.duration, SEND)
        ended = time.monotonic()
        if drained is not None:
            _wait_until(functools.partial(drained, result.requests - result.non_2xx))
        drain = time.monotonic() - ended if drained is not None else 0.0
    answered = max(1, result.requests - result.non_2xx + other.sent)
    return result, round((server.cpu_seconds() - before) / answered * 1e6, 1), other, drain


def _ratio(values: list[float], base: list[float]) -> float:
    return round(median([v / b for v, b in zip(values, base, strict=True)]), 3)


def run(settings: Settings, tmp: Path) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        fast = start_receiver(tmp, "receiver-fast", 0.0)
        stack.callback(fast.stop)
        slow = start_receiver(tmp, "receiver-slow", settings.callback_slow_seconds)
        stack.callback(slow.stop)
        servers: dict[str, Server] = {}
        for name, bench_url, other_url in (
            ("off", None, None),
            ("on", fast.url + "/events", None),
            ("slow", None, slow.url + "/events"),
        ):
            servers[name] = _start(tmp, f"callbacks-{name}", bench_url, other_url)
            stack.callback(servers[name].stop)
        first = OTHER_FIRST
        for server in servers.values():  # warm-up: first connections, caches
            run_wrk(
                Load(server.url, BENCH_KEY, BENCH_SECRET, settings.threads, settings.connections),
                settings.warmup,
            )
        _wait_until(lambda: _metric(servers["on"], "smsedge_callback_queue_depth") == 0)  # the warm-up's
        rounds: dict[str, list[Round]] = {name: [] for name in servers}
        for number in range(settings.rounds):
            for name, server in servers.items():
                first += 1_000_000
                drained = None
                if name == "on":
                    before = _received(fast)
                    drained = functools.partial(_caught_up, fast, before)
                rounds[name].append(_round(server, settings, first, drained))
                result, cpu, other, drain = rounds[name][-1]
                print(
                    f"  round {number + 1} {name:5} {result.rps:9.1f} req/s  p99 {result.p99_ms} ms"
                    f"  {cpu} us CPU/request  drained in {drain:.2f} s"
                    f"  (other account: {other.sent} sends, {other.failed} failed)",
                    flush=True,
                )
        delivered = {"fast": _received(fast), "slow": _received(slow)}
        backlog = {name: _metric(server, "smsedge_callback_queue_depth") for name, server in servers.items()}
    off = [r for r, _, _, _ in rounds["off"]]
    cases = {name: _case(results, off) for name, results in rounds.items()}
    bench_sends = sum(r.requests - r.non_2xx for r, _, _, _ in rounds["on"])
    return {
        "cases": cases,
        "on_vs_off": cases["on"]["ratio"],
        "on_p99_vs_off": cases["on"]["p99_ratio"],
        "slow_p99_vs_off": cases["slow"]["p99_ratio"],
        "callbacks_received": {
            "fast": delivered["fast"],
            "on_sends": bench_sends,
            "slow": delivered["slow"],
            "slow_other_sends": sum(o.sent for _, _, o, _ in rounds["slow"]),
        },
        "queue_depth_at_end": backlog,
        "slow_receiver_seconds": settings.callback_slow_seconds,
        "other_account_rate": settings.callback_other_rate,
        "command": rounds["off"][0][0].command,
    }


def _case(rounds: list[Round], off: list[WrkResult]) -> dict[str, Any]:
    """A case's medians; its ratio to *off* counts a round's drain time with the round: sends made
    and their callbacks posted, per second."""
    results = [r for r, _, _, _ in rounds]
    sustained = [r.rps * r.seconds / (r.seconds + drain) for r, _, _, drain in rounds]
    return {
        "rps": round(median([r.rps for r in results]), 1),
        "sustained_rps": round(median(sustained), 1),
        "p50_ms": round(median([r.p50_ms for r in results]), 2),
        "p99_ms": round(median([r.p99_ms for r in results]), 2),
        "ratio": _ratio(sustained, [b.rps for b in off]),
        "p99_ratio": _ratio([r.p99_ms for r in results], [b.p99_ms for b in off]),
        "non_2xx": sum(r.non_2xx for r in results),
        "socket_errors": sum(r.socket_errors for r in results),
        "other_failed": sum(o.failed for _, _, o, _ in rounds),
        "cpu_us_per_request": round(median([cpu for _, cpu, _, _ in rounds]), 1),
        "rounds": [
            {
                **r.summary(),
                "cpu_us_per_request": cpu,
                "other_sends": o.sent,
                "drain_seconds": round(drain, 2),
            }
            for r, cpu, o, drain in rounds
        ],
    }


def _caught_up(receiver: Server, before: int, sent: int) -> bool:
    return _received(receiver) - before >= sent


def _wait_until(condition: Callable[[], bool], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the deliverer did not catch up within {limit:g} s")
        time.sleep(0.1)
