"""Running wrk with bench/send.lua and reading its one-line JSON summary."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FIRST_NUMBER", "Load", "WrkResult", "run_wrk"]

SCRIPT = Path(__file__).with_name("send.lua")
FIRST_NUMBER = 13_000_000_000  # 130… to 139…: a billion valid mainland mobile numbers
_PER_RUN = 1_000_000  # numbers each wrk thread may use in one run (send.lua's stride)


@dataclass(frozen=True, slots=True)
class Load:
    """What to send: where, as whom, and how hard."""

    url: str
    key: str = "-"
    secret: str = "-"
    threads: int = 2
    connections: int = 64
    pool: int = 0  # numbers per thread to cycle through; 0: a fresh number every request
    limit: int = 0  # responses per thread, then stop; 0: run for the whole duration


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    command: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "rps": round(self.rps, 1),
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        }


class _Numbers:
    """Hands each wrk run its own block of numbers, so no run repeats another's."""

    def __init__(self) -> None:
        self.next_run = 0

    def take(self, threads: int) -> int:
        first = FIRST_NUMBER + self.next_run * _PER_RUN
        self.next_run += threads
        if self.next_run * _PER_RUN >= 1_000_000_000:
            raise RuntimeError("out of phone numbers: fewer rounds, please")
        return first


_numbers = _Numbers()


def run_wrk(
    load: Load, seconds: float, path: str = "/api/sms/send", until: Callable[[], bool] | None = None
) -> WrkResult:
    """One wrk run of ``seconds``, or shorter: wrk is interrupted (and reports) once ``until()``."""
    args = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        load.url + path,
        "--",
        path,
        str(_numbers.take(load.threads)),
        load.key,
        load.secret,
        str(load.pool),
        str(load.limit),
    ]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
        deadline = time.monotonic() + seconds + 60
        while wrk.poll() is None and time.monotonic() < deadline:
            time.sleep(0.25)
            if until is not None and until():
                wrk.send_signal(signal.SIGINT)  # wrk stops and prints its summary
                break
        try:
            stdout, stderr = wrk.communicate(timeout=max(5.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            wrk.kill()
            raise
    lines = [line for line in stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if not lines:
        raise RuntimeError(f"wrk failed ({wrk.returncode}): {stderr or stdout}")
    data = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    ms = {name: round(data[f"{name}_us"] / 1000, 2) for name in ("p50", "p90", "p99", "max")}
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non_2xx=data["non_2xx"],
        socket_errors=data["socket_errors"],
        p50_ms=ms["p50"],
        p90_ms=ms["p90"],
        p99_ms=ms["p99"],
        max_ms=ms["max"],
        command=_public(args),
    )


def _public(args: list[str]) -> str:
    """The command as documented: script path from the repository root, run-specific values named."""
    shown = [*args]
    shown[shown.index(str(SCRIPT))] = "bench/send.lua"
    shown = [re.sub(r"//127\.0\.0\.1:\d+/", "//127.0.0.1:<port>/", part) for part in shown]
    shown[-5] = "<first-number>"
    return shlex.join(shown)
