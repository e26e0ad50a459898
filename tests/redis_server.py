"""A real Redis server for tests, started from the ``redis-server`` binary on a free port.

No persistence, its own directory, stopped and restarted at will (to test outages). The binary is a
hard requirement: ``make test`` installs it, and a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.gateway_process import free_port

__all__ = ["RedisServer"]


class RedisServer:
    def __init__(
        self,
        directory: Path,
        *options: str,
        port: int | None = None,
        pick_port: Callable[[], int] = free_port,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self.binary = binary
        self.directory = directory
        self.options = options  # more command-line settings (cluster, replication)
        self.pick_port = pick_port
        # A port picked here may be taken by another process before the server binds it: until the
        # first start succeeds, a refused port is swapped for a fresh one (a restart keeps its port).
        self.port_is_free_to_change = port is None
        self.port = port or pick_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        for _attempt in range(5):
            if self._launch():
                self.port_is_free_to_change = False
                return self
            self.stop()
            if not self.port_is_free_to_change:
                break
            self.port = self.pick_port()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _launch(self) -> bool:
        """True once the server answers PING; False if it exits first (its port was taken) or
        stays silent for 10 s."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--protected-mode",
                "no",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        elif self.process is not None:
            self.process.wait()
        self.process = None
