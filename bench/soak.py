"""Soak: a gateway under mixed traffic and injected faults for a bounded time, then a report.

``make soak`` or ``python bench/soak.py`` (``SOAK_SECONDS``, default 600, shortens it;
``SOAK_TASKS``, default 4, sets the concurrent clients). Loopback only: the gateway is started here
(``python run.py serve``, one worker, embedded SQLite store in a temporary directory) with three mock
backends — ``mock`` (healthy: 20 ms, 2 % refusals), ``flaky`` (50 % refusals) and ``slow`` (3 s
latency against a 1 s timeout) — and ``mock`` as failover.

Traffic (from ``SOAK_TASKS`` asyncio tasks): single sends, batch sends, record pages, account info,
and bad requests (invalid phone, malformed JSON, wrong secret, unknown route, wrong method, oversize
body). Faults, on a loop: a carrier phase where a share of the sends names ``flaky`` or ``slow``
(refusals, timeouts, failover, circuit breaker), and a store phase where this script holds SQLite's
write lock for 1.5 s (store timeout 0.5 s: sends must be 503 ``UNAVAILABLE``, never 500).

Report: answers by operation, status and envelope code; client exceptions by type; latency
percentiles; the gateway's RSS (``/proc/<pid>/status``) at the start, peak and end; the money check
(initial balance − Σ price of non-failed records = balance); log lines by level. Exit status 1 when
something unexpected happened (a 500, a client exception, the gateway dying, money not adding up).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET = "sk_soak_0000000000000000", "soak-secret-0000"
HEADERS = {"X-API-Key": KEY, "X-API-Secret": SECRET}
INITIAL_MILLI = 10_000_000 * 1000
TEMPLATE = {"template_id": "123456", "params": {"code": "1234"}}


def config(db: Path) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    document["server"]["max_body_bytes"] = 65536
    document["store"].update(path=str(db), timeout=0.5)
    document["ratelimit"].update(account={"rate": 100_000, "burst": 100_000}, phone=[])
    document["providers"] = {
        "default": "mock",
        "failover": ["mock"],
        "backends": {
            "mock": {"plugin": "mock", "price": 0.05, "latency_ms": 20, "fail_rate": 0.02},
            "flaky": {"plugin": "mock", "price": 0.05, "latency_ms": 30, "fail_rate": 0.5},
            "slow": {
                "plugin": "mock",
                "price": 0.05,
                "latency_ms": 3000,
                "timeout": 1,
                "circuit": {"failures": 5, "cooldown": 5},
            },
        },
    }
    document["logging"]["level"] = "WARNING"
    document["accounts"] = [
        {
            "name": "soak",
            "api_key": KEY,
            "api_secret": SECRET,
            "balance": INITIAL_MILLI // 1000,
            "verification_status": "approved",
            "providers": [],
            "ratelimit": {"rate": 100_000, "burst": 100_000},
        }
    ]
    return document


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def phone(rng: random.Random) -> str:
    return f"13{rng.choice('56789')}{rng.randrange(10**8):08d}"


class Soak:
    def __init__(self, url: str, db: Path, pid: int, seconds: float) -> None:
        self.url, self.db, self.pid = url, db, pid
        self.deadline = time.monotonic() + seconds
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self.exceptions: Counter[tuple[str, str]] = Counter()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.phase = "healthy"  # or "carrier-fault" / "store-locked"
        self.rss: list[int] = []
        self.warm_rss = 0
        self.faults_injected: Counter[str] = Counter()

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def call(
        self, session: aiohttp.ClientSession, op: str, method: str, path: str, **kwargs: Any
    ) -> None:
        started = time.perf_counter()
        label = op if self.phase == "healthy" else f"{op}@{self.phase}"
        try:
            async with session.request(method, self.url + path, **kwargs) as response:
                text = await response.text()
                try:
                    code = json.loads(text).get("code") or "-"
                except ValueError:
                    code = "non-json"
                self.answers[label, response.status, code] += 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.exceptions[label, type(exc).__name__] += 1
        self.latency[op].append(time.perf_counter() - started)

    async def client(self, seed: int) -> None:
        rng = random.Random(seed)
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout, headers=HEADERS) as session:
            while self.running():
                roll = rng.random()
                provider = {}
                if self.phase == "carrier-fault" and rng.random() < 0.5:
                    provider = {"provider": rng.choice(["flaky", "slow"])}
                if roll < 0.50:
                    await self.call(
                        session,
                        "send",
                        "POST",
                        "/api/sms/send",
                        json={"phone": phone(rng), **TEMPLATE, **provider},
                    )
                elif roll < 0.60:
                    phones = [phone(rng) for _ in range(rng.randint(2, 20))]
                    await self.call(
                        session,
                        "batch",
                        "POST",
                        "/api/sms/batch-send",
                        json={"phones": phones, **TEMPLATE, **provider},
                    )
                elif roll < 0.75:
                    query = {"page": rng.randint(1, 5), "per_page": rng.choice([10, 100])}
                    if rng.random() < 0.3:
                        query["status"] = rng.choice(["success", "failed", "pending"])
                    await self.call(session, "records", "GET", "/api/sms/records", params=query)
                elif roll < 0.85:
                    await self.call(session, "info", "GET", "/api/account/info")
                else:
                    await self.bad(session, rng)

    async def bad(self, session: aiohttp.ClientSession, rng: random.Random) -> None:
        kind = rng.choice(["phone", "json", "auth", "route", "method", "size"])
        if kind == "phone":
            await self.call(
                session, "bad", "POST", "/api/sms/send", json={"phone": "1391234567x", **TEMPLATE}
            )
        elif kind == "json":
            await self.call(
                session,
                "bad",
                "POST",
                "/api/sms/send",
                data=b"{not json",
                headers={"Content-Type": "application/json"},
            )
        elif kind == "auth":
            await self.call(session, "bad", "GET", "/api/account/info", headers={"X-API-Secret": "wrong"})
        elif kind == "route":
            await self.call(session, "bad", "GET", "/api/nothing-here")
        elif kind == "method":
            await self.call(session, "bad", "DELETE", "/api/sms/send")
        else:
            await self.call(
                session,
                "bad",
                "POST",
                "/api/sms/send",
                data=b"x" * 70_000,
                headers={"Content-Type": "application/json"},
            )

    async def pause(self, seconds: float) -> bool:
        """Sleep, but not past the end; whether the soak is still running."""
        await asyncio.sleep(max(0.0, min(seconds, self.deadline - time.monotonic())))
        return self.running()

    async def faults(self) -> None:
        """Healthy 10 s, carrier faults 8 s, healthy 4 s, store locked 1.5 s, over and over."""
        while await self.pause(10):
            self.phase = "carrier-fault"
            self.faults_injected["carrier-fault"] += 1
            await self.pause(8)
            self.phase = "healthy"
            if not await self.pause(4):
                break
            self.phase = "store-locked"
            self.faults_injected["store-locked"] += 1
            await asyncio.to_thread(self.lock_store, 1.5)
            self.phase = "healthy"

    def lock_store(self, seconds: float) -> None:
        db = sqlite3.connect(self.db, timeout=5, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            db.execute("ROLLBACK")
        finally:
            db.close()

    async def sample_rss(self, warm_up: float) -> None:
        """Every 5 s; the baseline is taken after ``warm_up`` seconds of traffic (caches, pools and
        the allocator's arenas fill up first; growth after that is what a leak looks like)."""
        started = time.monotonic()
        while self.running():
            self.rss.append(rss_kb(self.pid))
            if not self.warm_rss and time.monotonic() - started >= warm_up:
                self.warm_rss = self.rss[-1]
            await self.pause(min(5, warm_up))
        self.rss.append(rss_kb(self.pid))

    async def run(self, tasks: int) -> None:
        warm_up = min(60.0, max(5.0, (self.deadline - time.monotonic()) / 6))
        await asyncio.gather(
            self.sample_rss(warm_up), self.faults(), *(self.client(seed) for seed in range(tasks))
        )


def money_check(db: Path) -> dict[str, Any]:
    connection = sqlite3.connect(db)
    try:
        balance = connection.execute("SELECT balance_milli FROM accounts").fetchone()[0]
        by_status = dict(
            connection.execute("SELECT status, COUNT(*) FROM records GROUP BY status").fetchall()
        )
        charged = connection.execute(
            "SELECT COALESCE(SUM(price_milli), 0) FROM records WHERE status != 'failed'"
        ).fetchone()[0]
    finally:
        connection.close()
    return {
        "records": by_status,
        "charged_milli": charged,
        "balance_milli": balance,
        "adds_up": INITIAL_MILLI - charged == balance,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gateway exited during start")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gateway not ready in 30 s")


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    tasks = int(os.environ.get("SOAK_TASKS", "4"))
    with tempfile.TemporaryDirectory(prefix="sms-edge-soak-") as temp:
        directory = Path(temp)
        db = directory / "soak.db"
        config_path = directory / "soak.yaml"
        config_path.write_text(yaml.safe_dump(config(db)), encoding="utf-8")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = directory / "gateway.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "run.py", "serve", "--config", str(config_path), "--port", str(port)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        try:
            wait_ready(url, process)
            soak = Soak(url, db, process.pid, seconds)
            started = time.monotonic()
            asyncio.run(soak.run(tasks))
            elapsed = time.monotonic() - started
            alive = process.poll() is None
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                exit_code = process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = process.wait()
        levels: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                levels["non-json"] += 1
                continue
            levels[entry.get("level", "?")] += 1
            if entry.get("level") in ("ERROR", "CRITICAL"):
                errors[str(entry.get("message", ""))[:80]] += 1
        money = money_check(db)
    return report(soak, elapsed, tasks, alive, exit_code, levels, errors, money)


def report(
    soak: Soak,
    elapsed: float,
    tasks: int,
    alive: bool,
    exit_code: int,
    levels: Counter[str],
    errors: Counter[str],
    money: dict[str, Any],
) -> int:
    total = sum(soak.answers.values())
    print(f"soak: {elapsed:.0f} s, {tasks} clients, {total} answers ({total / elapsed:.0f}/s)")
    print("answers by operation, status, code:")
    for (op, status, code), n in sorted(soak.answers.items()):
        print(f"  {op:<17} {status:>3} {code:<22} {n:>8}")
    print("client exceptions:", dict(soak.exceptions) or "none")
    print("latency ms (p50 / p99 / max):")
    for op, values in sorted(soak.latency.items()):
        print(
            f"  {op:<8} {percentile(values, 0.5):8.1f} {percentile(values, 0.99):8.1f}"
            f" {max(values) * 1000:8.1f}"
        )
    first, peak, last = soak.rss[0], max(soak.rss), soak.rss[-1]
    warm = soak.warm_rss or first
    print(
        f"gateway RSS kB: at ready {first}, after warm-up {warm}, peak {peak}, end {last}"
        f" (growth after warm-up {100 * (last - warm) / warm:+.1f} %, {len(soak.rss)} samples)"
    )
    print("faults injected:", dict(soak.faults_injected))
    print("money:", money)
    print(f"gateway alive at the end: {alive}, exit code after SIGTERM: {exit_code}")
    print("log lines by level:", dict(levels), "errors:", dict(errors) or "none")
    unexpected = [
        f"{n}x {op} {status}"
        for (op, status, _), n in soak.answers.items()
        if status >= 500 and status not in (502, 503, 504)
    ]
    if soak.exceptions:
        unexpected.append(f"client exceptions {dict(soak.exceptions)}")
    if not alive or exit_code != 0:
        unexpected.append(f"gateway alive={alive} exit={exit_code}")
    if not money["adds_up"]:
        unexpected.append("money does not add up")
    print("UNEXPECTED:", unexpected if unexpected else "nothing")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
