"""``python -m bench [case ...]``: run the cases (default: all), print the table, write results.json.

Cases run in the order given; a case run again replaces its entry in bench/results.json and the
others are kept, so ``python -m bench records`` refreshes one number (each entry records its own
settings, code version and load average). Settings: bench/settings.py.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import batch, callbacks, profiling, records, rss, throughput
from bench.report import RESULTS, loadavg, machine, table, write_results
from bench.settings import Settings

CASES = {
    "throughput": throughput.run,
    "batch": batch.run,
    "records": records.run,
    "rss": rss.run,
    "callbacks": callbacks.run,
    "profile": profiling.run,
}


def _previous() -> dict[str, Any]:
    try:
        return json.loads(RESULTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main(argv: list[str]) -> int:
    names = argv or list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        print(f"unknown case {unknown[0]!r}; cases: {' '.join(CASES)}", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    root = settings.temp_root()
    tmp = Path(tempfile.mkdtemp(prefix="smsedge-bench-", dir=root))
    results = _previous()
    results["machine"] = machine()
    try:
        for name in names:
            print(f"== {name}", flush=True)
            before, started = loadavg(), time.monotonic()
            case = tmp / name
            case.mkdir()
            results[name] = CASES[name](settings, case)
            results[name]["when"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
            results[name]["code"] = results["machine"]["code"]
            results[name]["settings"] = settings.public()
            results[name]["loadavg_before"], results[name]["loadavg_after"] = before, loadavg()
            results[name]["wall_seconds"] = round(time.monotonic() - started, 1)
            write_results(results)
    finally:
        if root is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"configs, databases, logs and raw profiles kept in {tmp}")
    print(table(results))
    print(f"written: {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
