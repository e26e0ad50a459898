"""The processes a case needs, started on free loopback ports and always stopped.

The gateway runs as an operator runs it (``python run.py serve --config …``, one worker, JSON access
log to a file, metrics on), from a config generated under the bench's temporary directory.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BENCH_KEY",
    "BENCH_SECRET",
    "HUGE_BUCKET",
    "ROOT",
    "Server",
    "check_config",
    "gateway_document",
    "redis_server",
    "run_cli",
    "start_bare",
    "start_carrier",
    "start_gateway",
    "start_receiver",
]

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "sk_bench_000000000000000"
BENCH_SECRET = "bench-secret-not-for-production"
# Limits stay on (they are part of the chain) but never refuse the bench's own load.
HUGE_BUCKET = {"rate": 1_000_000, "burst": 1_000_000_000}


class Server:
    """One child process serving HTTP on ``port``; ``stop()`` is safe to call twice."""

    def __init__(
        self, name: str, args: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.command = args
        with log.open("wb") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str = "/readyz", timeout: float = 30.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready in {timeout:.0f} s")

    def prime(self) -> None:
        """One send, so the account's scrypt check (once per process, then memoised) and other
        first-use costs fall outside every measurement; the bench's rounds add their warm-up."""
        body = b'{"phone": "19900000000", "template_id": "123456", "params": {"code": "1234"}}'
        headers = {"Content-Type": "application/json", "X-API-Key": BENCH_KEY, "X-API-Secret": BENCH_SECRET}
        request = urllib.request.Request(self.url + "/api/sms/send", body, headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process (every thread) and of its live children
        (the SQLite writer process), from /proc."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if stat.parent.name == str(self.pid) or fields[1] == str(self.pid):  # itself, a child
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        """Resident memory now, from /proc/<pid>/status (VmRSS, KiB)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def served(self, route: str) -> int:
        """Requests the gateway has answered on ``route`` (any status), from its /metrics."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        label = f'route="{route}"'
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("smsedge_http_requests_total{") and label in line
            )
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ready(server: Server) -> Server:
    try:
        return server.wait_ready()
    except BaseException:
        server.stop()
        raise


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gateway_document(tmp: Path, name: str, **overrides: Any) -> dict[str, Any]:
    """The embedded default with the bench account and its own SQLite file; ``overrides`` replace
    whole top-level sections' keys (``ratelimit={"backend": "redis"}`` keeps the other keys)."""
    document = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    document["server"]["secret_key"] = "bench-phone-hash-key-0000"
    document["store"]["path"] = str(tmp / f"{name}.db")
    document["ratelimit"]["account"] = dict(HUGE_BUCKET)
    document["metrics"] = {"enabled": True, "path": "/metrics"}
    document["logging"] = {"level": "INFO", "format": "json"}
    document["accounts"] = [
        {
            "name": "bench",
            "api_key": BENCH_KEY,
            "api_secret": BENCH_SECRET,
            "balance": 1_000_000_000,
            "verification_status": "approved",
            "ratelimit": dict(HUGE_BUCKET),
        }
    ]
    for section, values in overrides.items():
        document[section] = {**document.get(section, {}), **copy.deepcopy(values)}
    return document


def _write_config(tmp: Path, name: str, document: dict[str, Any]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def check_config(tmp: Path, name: str, document: dict[str, Any]) -> str | None:
    """None when ``run.py check-config`` accepts the document, else its one-line refusal."""
    path = _write_config(tmp, name, document)
    done = subprocess.run(
        [sys.executable, "run.py", "check-config", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip()


def run_cli(tmp: Path, name: str, *args: str) -> str:
    """``run.py accounts …`` on the gateway ``name``'s config, as an operator runs it; its stdout."""
    done = subprocess.run(
        [sys.executable, "run.py", *args, "--config", str(tmp / f"{name}.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"run.py {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def start_gateway(tmp: Path, name: str, document: dict[str, Any]) -> Server:
    path = _write_config(tmp, name, document)
    port = free_port()
    args = [sys.executable, "run.py", "serve", "--config", str(path), "--port", str(port)]
    gateway = _ready(Server(name, args, port, tmp / f"{name}.log", env=_gateway_env()))
    try:
        gateway.prime()
    except BaseException:
        gateway.stop()
        raise
    return gateway


def _gateway_env() -> dict[str, str]:
    """Ours, less anything that would change how the gateway runs (multiprocess metrics)."""
    return {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}


def start_bare(tmp: Path) -> Server:
    port = free_port()
    args = [sys.executable, "-m", "bench.bare", str(port)]
    return _ready(Server("bare", args, port, tmp / "bare.log"))


def start_carrier(tmp: Path, latency_ms: float) -> Server:
    port = free_port()
    args = [sys.executable, "-m", "bench.carrier", str(port), str(latency_ms)]
    return _ready(Server("carrier", args, port, tmp / "carrier.log"))


def start_receiver(tmp: Path, name: str, delay: float) -> Server:
    port = free_port()
    args = [sys.executable, "-m", "bench.receiver", str(port), str(delay)]
    return _ready(Server(name, args, port, tmp / f"{name}.log"))


def _redis_answers(port: int, command: bytes = b"PING", expected: bytes = b"+PONG") -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(command + b"\r\n")
            return expected in conn.recv(8192)
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(
    tmp: Path, appendfsync: str, name: str = "redis", replica_of: str | None = None
) -> Iterator[str]:
    """A Redis server with docs/deployment.md's persistence (append-only file, ``appendfsync``),
    on a free port, a replica of the server at URL ``replica_of`` if given (once it has synced);
    yields its URL."""
    directory = tmp / name
    directory.mkdir(exist_ok=True)
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: `make bench` installs it")
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        appendfsync,
        "--dir",
        str(directory),
        "--protected-mode",
        "no",
    ]
    if replica_of:
        args += ["--replicaof", "127.0.0.1", replica_of.rsplit(":", 1)[1].split("/")[0]]
    with (tmp / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not (
            _redis_answers(port, b"INFO replication", b"master_link_status:up")
            if replica_of
            else _redis_answers(port)
        ):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not start (or sync) on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
