"""py-spy on the full chain under wrk load: bench/profile.svg, and where the time goes, in numbers.

Shares are of wall time: py-spy samples each thread 100 times a second, so a thread's samples over
(seconds x 100) is how busy it was, and a function's is how much of the run that thread spent
inside it (inclusive) or in its own code (self). Samples whose leaf is a wait (``WAITING``) are
counted apart, as waiting. The ``gil`` view keeps only samples of the thread holding the GIL, so
time in syscalls and GIL hand-offs (fsync, socket writes, getrandom) drops out of it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench.servers import BENCH_KEY, BENCH_SECRET, gateway_document, start_gateway
from bench.settings import Settings
from bench.wrk import Load, run_wrk

__all__ = ["run", "summarise"]

RATE = 100  # py-spy's default samples per second
SVG = Path(__file__).with_name("profile.svg")
_THREAD = re.compile(r"thread \(\d+\): (?P<name>.*?)(?:_\d+)?$")
_LINE = re.compile(r" \(([^:]*):\d+\)$")
# Leaves that are waiting, not working, though py-spy does not always see it: the event loop in
# epoll, a pool thread blocked on its empty work queue.
WAITING = frozenset({"EpollSelector.select (selectors.py)", "_worker (concurrent/futures/thread.py)"})


def _py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def _record(pid: int, seconds: float, output: Path, *options: str) -> None:
    subprocess.run(
        [
            _py_spy(),
            "record",
            *options,
            "-o",
            str(output),
            "--pid",
            str(pid),
            "--duration",
            str(round(seconds)),
        ],
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )


def _frame(frame: str) -> str:
    """``Sender.send (gateway/sending/sender.py:90)`` -> ``Sender.send (gateway/sending/sender.py)``."""
    return _LINE.sub(r" (\1)", frame)


def _area(frame: str) -> str:
    """The package or module a frame's code lives in: ``asyncio``, ``gateway``, ``logging``…"""
    path = frame.rpartition(" (")[2].rstrip(")")
    return path.split("/")[0].removesuffix(".py")


def summarise(raw: Path, seconds: float, top: int = 15) -> dict[str, Any]:
    """Per thread: how busy (waiting leaves left out), its top functions by self time and by
    inclusive time, leaving out the frames nearly every sample has (entry point, event loop)."""
    wall = seconds * RATE
    busy: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    own: dict[str, Counter[str]] = {}
    inclusive: dict[str, Counter[str]] = {}
    areas: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(frame) for frame in stack.split(";")]
        match = _THREAD.match(frames[0])
        thread, samples = (match["name"] if match else frames[0]), int(count)
        if frames[-1] in WAITING:
            waiting[thread] += samples
            continue
        busy[thread] += samples
        own.setdefault(thread, Counter())[frames[-1]] += samples
        if thread == "MainThread":
            areas[_area(frames[-1])] += samples
        for frame in set(frames[1:]):
            inclusive.setdefault(thread, Counter())[frame] += samples

    def shares(counter: Counter[str], below: float = float("inf"), top: int = top) -> dict[str, float]:
        kept = [(name, n) for name, n in counter.most_common() if n < below][:top]
        return {name: round(n / wall, 3) for name, n in kept}

    active = [name for name, n in busy.most_common() if n >= wall / 20]  # busy 5 % or more
    return {
        "seconds": seconds,
        "busy": shares(busy),
        "waiting": shares(waiting),
        "main_self_by_area": shares(areas),
        "self": {name: shares(own[name]) for name in active},
        "inclusive": {name: shares(inclusive[name], below=0.95 * busy[name], top=2 * top) for name in active},
    }


def run(settings: Settings, tmp: Path) -> dict[str, Any]:
    """Three recordings under one load: the flame graph (wall clock), then raw stacks twice, on the
    wall clock and with ``--gil`` (only the thread holding the GIL: Python's own CPU time)."""
    seconds = settings.profile_seconds
    with contextlib.ExitStack() as stack:
        gateway = start_gateway(tmp, "profile", gateway_document(tmp, "profile"))
        stack.callback(gateway.stop)
        load = Load(gateway.url, BENCH_KEY, BENCH_SECRET, settings.threads, settings.connections)
        run_wrk(load, settings.warmup)
        results: list[Any] = []
        driver = threading.Thread(target=lambda: results.append(run_wrk(load, 3 * seconds + 6)))
        driver.start()
        try:
            _record(gateway.pid, seconds, SVG)
            _record(gateway.pid, seconds, tmp / "wall.raw", "--format", "raw", "--threads")
            _record(gateway.pid, seconds, tmp / "gil.raw", "--format", "raw", "--threads", "--gil")
        finally:
            driver.join()
    return {
        "wall": summarise(tmp / "wall.raw", seconds),
        "gil": summarise(tmp / "gil.raw", seconds),
        "load": results[0].summary() if results else None,
        "svg": str(SVG.relative_to(SVG.parent.parent)),
    }
