"""How ``run.py reload`` finds the running gateway: a PID file named for the port it serves.

The process that owns the port (the gateway, or the master with ``workers > 1``) writes its PID to
``$SMS_EDGE_PID_FILE``, else ``<tmp>/sms-edge-<port>.pid``, holds an exclusive ``flock`` on it while
it runs and removes it on exit. The port comes from the config, so ``run.py reload --config P``
reaches the gateway started with ``P``. The lock tells a live gateway's file from one a killed
gateway left behind, whose PID may since belong to another program: that one is never signalled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PID_FILE_ENV", "pid_file", "signal_reload", "written_pid_file"]

PID_FILE_ENV = "SMS_EDGE_PID_FILE"


def pid_file(port: int) -> Path:
    configured = os.environ.get(PID_FILE_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"sms-edge-{port}.pid"


@contextlib.contextmanager
def written_pid_file(port: int) -> Iterator[None]:
    """This process's PID in the port's file, locked, for as long as the block runs."""
    path = pid_file(port)
    with path.open("a+", encoding="ascii") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live gateway has the port (binding it will fail): not our file
            yield
            return
        file.truncate(0)
        file.write(f"{os.getpid()}\n")
        file.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # while still locked: no newer gateway's file is removed


def _live_pid(path: Path, port: int) -> int:
    try:
        with path.open(encoding="ascii") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # locked: the gateway that wrote it is running
                return int(file.read().strip())
    except (OSError, ValueError):
        pass
    raise LookupError(f"no running gateway's PID in {path} (is one serving port {port}?)")


def _serves_a_gateway(pid: int) -> bool:
    """Is ``pid``'s command line a gateway's (``run.py serve`` or ``sms-edge serve``)?"""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:  # gone, or no /proc here: only the PID file can vouch for it
        return False
    return "serve" in args and any(Path(arg).name in ("run.py", "sms-edge") for arg in args)


def signal_reload(port: int, pid: int | None = None) -> int:
    """Send SIGHUP to ``pid``, else to the running gateway of the port's file; the PID signalled.

    A ``pid`` given must be a gateway: the one the port's file names, or a process serving one.
    Raises ``LookupError`` with a sentence when there is no gateway to signal.
    """
    if pid is None:
        pid = _live_pid(pid_file(port), port)
    elif not _serves_a_gateway(pid):
        try:
            named = _live_pid(pid_file(port), port)
        except LookupError:
            named = None
        if pid != named:
            raise LookupError(
                f"process {pid} is not a gateway (neither the PID in {pid_file(port)}"
                " nor a `run.py serve`): nothing sent"
            )
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise LookupError(f"no process {pid}") from None
    except PermissionError:
        raise LookupError(f"not allowed to signal process {pid}") from None
    return pid
