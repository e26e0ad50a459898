"""``run.py backup --to FILE``: a consistent copy of the SQLite store, taken while gateways serve.

Copying the file (cp, rsync) under a running gateway is not a backup: the newest commits are in the
WAL beside it, and a copy taken mid-write can be torn. SQLite's online backup reads one snapshot in
one read transaction, which WAL lets run beside the writer: no send waits for it, and it holds every
commit made before it began. The store is opened read-only, by its owner only: SQLite may create the
``-wal`` and ``-shm`` files beside a stopped gateway's store, and root's would lock the gateway
out of its own store. The copy is written beside its final
name (mode 0600: records and secret hashes) and renamed into place only once it is complete, checked
and on disk, so an interrupted backup leaves no file that looks like one; an existing file is never
overwritten.
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
        with contextlib.closing(_read_only(store, timeout)) as live, \
                contextlib.closing(sqlite3.connect(partial)) as copy:
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
