"""``run.py backup --to FILE``: a consistent copy of the SQLite store, taken while gateways serve.

Copying the file under a running gateway is not a backup (the newest commits are in the WAL, a copy
may be torn). SQLite's online backup reads one snapshot beside the writer, so no send waits. The copy
(mode 0600) is renamed into place only once complete, checked and on disk; an existing file is never
overwritten. Details: (docs/runbook-backup.md, "Backing up, while the gateway serves";
docs/stores.md, "Backups").
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

__all__ = ["BackupRefused", "backup"]


class BackupRefused(Exception):
    """Why no backup was written, in one line for the operator."""


def backup(source: str, target: str, timeout: float) -> dict[str, object]:
    """Copy the store at ``source`` to the new file ``target``; what the copy holds, to print."""
    store, destination = Path(source).absolute(), Path(target).absolute()
    if not store.is_file():
        raise BackupRefused(f"no SQLite store at {source}")
    if destination.exists():
        raise BackupRefused(f"{target} exists: name a new file")
    if (owner := store.stat().st_uid) != os.geteuid():
        raise BackupRefused(f"run it as the store's owner (uid {owner}), as the gateway runs")
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with (
            contextlib.closing(_read_only(store, timeout)) as live,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            live.backup(copy)  # all pages in one step: one snapshot
            summary = _summary(copy)
        _fsync(partial)
        os.link(partial, destination)  # unlike a rename, refuses a file that appeared meanwhile
        _fsync(destination.parent)
    except sqlite3.Error as exc:
        raise BackupRefused(f"cannot copy {source}: {exc}") from None
    except OSError as exc:
        raise BackupRefused(f"cannot write {target}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    return {"backup": str(destination), "bytes": destination.stat().st_size, **summary}


def _read_only(store: Path, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(store))}?mode=ro", uri=True, timeout=timeout)


def _summary(copy: sqlite3.Connection) -> dict[str, object]:
    """SQLite's own check of the copy, and what it holds, to compare with the live store."""
    (check,) = copy.execute("PRAGMA quick_check").fetchone()
    if check != "ok":
        raise BackupRefused(f"the copy failed its check: {check}")
    (accounts,) = copy.execute("SELECT count(*) FROM accounts").fetchone()
    (records,) = copy.execute("SELECT count(*) FROM records").fetchone()
    return {"check": check, "accounts": accounts, "records": records}


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
