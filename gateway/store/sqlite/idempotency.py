"""Idempotency-Key claims in SQLite: the statements the store runs in its writer's transactions.

The writer is one thread running whole transactions, so "is the key free?" and "take it" cannot
interleave between two requests: exactly one of any number of concurrent claimers gets ``new``, and
of claimers of a stale claim exactly one gets ``stale``.
"""

from __future__ import annotations

import sqlite3

from gateway.store.base import IdempotencyClaim

__all__ = ["claim", "finish", "release"]

_SWEEP = 100  # expired rows dropped per claim: keeps the table to a day's keys without a job


def claim(
    db: sqlite3.Connection,
    account_id: int,
    key: str,
    fingerprint: str,
    token: str,
    now_ms: int,
    ttl_ms: int,
    lease_ms: int,
) -> IdempotencyClaim:
    db.execute(
        "DELETE FROM idempotency_keys WHERE (account_id, key) IN (SELECT account_id, key"
        " FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)",
        (now_ms, _SWEEP),
    )
    row = db.execute(
        "SELECT fingerprint, token, status, body, claimed_at, seed FROM idempotency_keys"
        " WHERE account_id = ? AND key = ? AND expires_at > ?",
        (account_id, key, now_ms),
    ).fetchone()
    if row is None:
        db.execute(
            "INSERT OR REPLACE INTO idempotency_keys (account_id, key, fingerprint, token,"
            " created_at, expires_at, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (account_id, key, fingerprint, token, now_ms, now_ms + ttl_ms, now_ms),
        )
        return IdempotencyClaim("new")
    held_fingerprint, held_token, status, body, claimed_at, seed = row
    if held_fingerprint != fingerprint:
        return IdempotencyClaim("conflict")
    if status is not None:
        return IdempotencyClaim("replay", status, bytes(body))
    if held_token == token:  # the holder's own retry: what its claim answered
        return IdempotencyClaim("stale", previous_token=seed) if seed else IdempotencyClaim("new")
    if claimed_at + lease_ms > now_ms:
        return IdempotencyClaim("pending")
    seed = seed or held_token  # every later attempt derives its message ids from the first token
    db.execute(
        "UPDATE idempotency_keys SET token = ?, claimed_at = ?, seed = ? WHERE account_id = ? AND key = ?",
        (token, now_ms, seed, account_id, key),
    )
    return IdempotencyClaim("stale", previous_token=seed)


def finish(db: sqlite3.Connection, account_id: int, key: str, token: str, status: int, body: bytes) -> None:
    db.execute(
        "UPDATE idempotency_keys SET status = ?, body = ?"
        " WHERE account_id = ? AND key = ? AND token = ? AND status IS NULL",
        (status, body, account_id, key, token),
    )


def release(db: sqlite3.Connection, account_id: int, key: str, token: str) -> None:
    db.execute(
        "DELETE FROM idempotency_keys WHERE account_id = ? AND key = ? AND token = ? AND status IS NULL",
        (account_id, key, token),
    )
