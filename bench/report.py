"""The machine, the targets, the printed table and bench/results.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "loadavg", "machine", "table", "targets", "write_results"]

RESULTS = Path(__file__).with_name("results.json")


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _version(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "?"


def code_version() -> str:
    """The gateway's commit (``-dirty`` with local changes), or $BENCH_CODE outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    described = _version("git", "-C", str(root), "describe", "--always", "--dirty")
    if described in ("not found", "?") or described.startswith("fatal"):
        return os.environ.get("BENCH_CODE", "unknown")
    return described


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    mem_kib = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": metadata.version("aiohttp"),
        "wrk": _version("wrk", "--version"),
        "redis": _version("redis-server", "--version"),
        "code": code_version(),
    }


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The targets of issues 22 and 25, each with the measured value and whether it is met."""
    checks: dict[str, dict[str, Any]] = {}
    cases = results.get("throughput", {}).get("cases", {})
    for case, floor in (("default", 0.30), ("redis", 0.25), ("info", 0.55)):
        if case in cases:
            ratio = cases[case]["ratio"]
            checks[f"{case} >= {floor} x bare"] = {"value": ratio, "met": ratio >= floor}
    if "default" in cases and "bare" in cases:
        times = round(cases["default"]["cpu_us_per_request"] / cases["bare"]["cpu_us_per_request"], 1)
        checks["CPU per send (gateway and writer) <= 4 x bare's per request"] = {
            "value": times,
            "met": times <= 4,
        }
    for case in ("default", "redis"):
        if case in cases:
            spread = round(cases[case]["p99_ms"] / cases[case]["p50_ms"], 1)
            checks[f"{case} p99 <= 3 x its p50"] = {"value": spread, "met": spread <= 3}
    if "batch" in results:
        p50 = results["batch"]["p50_ms"]
        checks["batch of 100 p50 < 150 ms"] = {"value": p50, "met": p50 < 150}
        numbers = results["batch"].get("mock_numbers_per_s")
        if numbers and "default" in cases:
            times = round(numbers / cases["default"]["rps"], 1)
            checks["batch numbers/s >= 10 x single-send req/s"] = {"value": times, "met": times >= 10}
    if "records" in results:
        p99 = results["records"]["p99_ms"]
        checks["records at 1M p99 < 50 ms"] = {"value": p99, "met": p99 < 50}
    if "callbacks" in results:
        run = results["callbacks"]
        checks["callbacks on >= 0.9 x off"] = {"value": run["on_vs_off"], "met": run["on_vs_off"] >= 0.9}
        checks["p99 with a slow receiver elsewhere <= 1.1 x off"] = {
            "value": run["slow_p99_vs_off"],
            "met": run["slow_p99_vs_off"] <= 1.1,
        }
    if "rss" in results:
        growth = results["rss"]["growth"]
        checks["flat memory (<= 1.10 x)"] = {"value": growth, "met": results["rss"]["flat"]}
    return checks


def _row(*cells: object) -> str:
    widths = (34, 10, 9, 9, 8)
    return "".join(
        f"{c!s:>{w}}" if i else f"{c!s:<{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    )


def table(results: dict[str, Any]) -> str:
    lines = [_row("case", "req/s", "p50 ms", "p99 ms", "x bare")]
    labels = {
        "bare": "bare aiohttp (ceiling)",
        "default": "gateway, embedded default",
        "redis": "gateway, Redis",
        "redis_wait": "gateway, Redis, wait_replicas 1",
        "info": "account info, embedded default",
    }
    for name, case in results.get("throughput", {}).get("cases", {}).items():
        lines.append(_row(labels[name], case["rps"], case["p50_ms"], case["p99_ms"], case["ratio"]))
    if "batch" in results:
        b = results["batch"]
        lines.append(
            _row(f"batch-send 100 @ {b['carrier_latency_ms']:g} ms carrier", "", b["p50_ms"], b["p99_ms"], "")
        )
        if "mock_numbers_per_s" in b:
            lines.append(_row("batch-send 100, mock: numbers/s", b["mock_numbers_per_s"], "", "", ""))
    if "records" in results:
        r = results["records"]
        lines.append(_row(f"records, {r['rows']:,} rows, filtered", "", r["p50_ms"], r["p99_ms"], ""))
    if "rss" in results:
        m = results["rss"]
        lines.append(
            f"RSS after {m['sends_first']:,} sends {m['rss_first_mib']} MiB, after "
            f"{m['sends_total']:,} {m['rss_total_mib']} MiB (x{m['growth']})"
        )
    if "callbacks" in results:
        lines.append(_row("callbacks (SQLite)", "req/s", "p50 ms", "p99 ms", "x off"))
        labels = {"off": "  off", "on": "  on, fast receiver", "slow": "  off, other account's slow"}
        for name, case in results["callbacks"]["cases"].items():
            lines.append(_row(labels[name], case["rps"], case["p50_ms"], case["p99_ms"], case["ratio"]))
    if "redis_covers" in results.get("throughput", {}):
        run = results["throughput"]
        lines.append(f"Redis case: {run['redis_covers']}; {run.get('redis_persistence', '')}")
        if "redis_wait_covers" in run:
            lines.append(f"Redis wait case: {run['redis_wait_covers']}")
    if "profile" in results:
        lines += _profile_lines(results["profile"])
    lines.append("targets:")
    lines += [
        f"  {'met    ' if t['met'] else 'NOT met'}  {name}: {t['value']}"
        for name, t in targets(results).items()
    ]
    return "\n".join(lines)


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    wall, gil = profile["wall"], profile["gil"]
    busy = ", ".join(f"{name} {share:.0%}" for name, share in wall["busy"].items() if share >= 0.05)
    lines = [
        f"profile ({profile['svg']}): busy (wall) {busy}; event loop holding the GIL "
        f"{gil['busy'].get('MainThread', 0):.0%}",
        "  top self time, event loop, GIL held:",
    ]
    lines += [
        f"    {share:6.1%}  {name}" for name, share in list(gil["self"].get("MainThread", {}).items())[:8]
    ]
    return lines


def write_results(results: dict[str, Any]) -> None:
    results["targets"] = targets(results)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
