"""Versioned SQLite schema: each migration runs once, in order, recorded in ``schema_migrations``."""

from __future__ import annotations

import sqlite3
import time

from gateway.store.sqlite import quotas

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            api_key TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            balance_milli INTEGER NOT NULL CHECK (balance_milli >= 0),
            verification_status TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            providers TEXT NOT NULL DEFAULT '',
            rate REAL,
            burst INTEGER,
            total_sent INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE daily_sent (
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            day TEXT NOT NULL,
            sent INTEGER NOT NULL,
            PRIMARY KEY (account_id, day)
        ) WITHOUT ROWID;
        CREATE TABLE records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            message_id TEXT NOT NULL UNIQUE,
            phone TEXT NOT NULL,
            template_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
            price_milli INTEGER NOT NULL,
            carrier_id TEXT,
            error TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        -- Newest-first pages, with or without a status, stay index scans at millions of rows:
        -- the implicit rowid at the end of each index orders ties by id.
        CREATE INDEX records_by_account_time ON records (account_id, created_at);
        CREATE INDEX records_by_account_status_time ON records (account_id, status, created_at);
        """,
    ),
    (
        2,
        """
        -- Delivery receipts name a message by the carrier's id (and, for carriers that share one id
        -- across a call's numbers, by the number): keep a keyed hash of it, never the number.
        ALTER TABLE records ADD COLUMN phone_hash TEXT NOT NULL DEFAULT '';
        CREATE INDEX records_by_carrier_id ON records (provider, carrier_id)
        """,
    ),
    (
        3,
        """
        -- A receipt can beat the settle transaction that gives its record the carrier's id: it
        -- waits here until settle applies it, or is dropped after a day (see sqlite_receipts.py).
        CREATE TABLE early_receipts (
            provider TEXT NOT NULL,
            carrier_id TEXT NOT NULL,
            phone_hash TEXT NOT NULL,
            delivered INTEGER NOT NULL,
            error TEXT,
            received_at INTEGER NOT NULL,
            PRIMARY KEY (provider, carrier_id, phone_hash)
        ) WITHOUT ROWID;
        CREATE INDEX early_receipts_by_time ON early_receipts (received_at)
        """,
    ),
    (
        4,
        """
        -- Idempotency-Key claims (see sqlite_idempotency.py): status NULL while the first request
        -- runs, body is its response (already masked). Rows past expires_at count as absent.
        CREATE TABLE idempotency_keys (
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            token TEXT NOT NULL,
            status INTEGER,
            body BLOB,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (account_id, key)
        ) WITHOUT ROWID;
        CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at)
        """,
    ),
    (
        5,
        """
        -- A record's public id is numbered per account (1, 2, 3 … each), as the global rowid would
        -- tell a tenant how many messages the others sent. ``reserve`` takes the next numbers from
        -- accounts.records_seq in the UPDATE that charges. The rowid stays the internal key (and
        -- orders ties). Existing records are numbered per account in the order they were written.
        ALTER TABLE accounts ADD COLUMN records_seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE records ADD COLUMN seq INTEGER;
        UPDATE records SET seq = numbered.n FROM (
            SELECT id, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY id) AS n FROM records
        ) AS numbered WHERE numbered.id = records.id;
        UPDATE accounts SET records_seq = (
            SELECT COALESCE(MAX(seq), 0) FROM records WHERE records.account_id = accounts.id
        );
        CREATE UNIQUE INDEX records_by_account_seq ON records (account_id, seq)
        """,
    ),
    (
        6,
        """
        -- /readyz writes here (rate-limited): one row, rewritten with a few pages of filler, so a
        -- disk too full for a send's records is also too full for the probe.
        CREATE TABLE readiness_probe (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            written_at INTEGER NOT NULL,
            filler BLOB NOT NULL
        )
        """,
    ),
    (
        7,
        """
        -- An Idempotency-Key claim's lease (see sqlite/idempotency.py): claimed_at is when its
        -- current holder took it, seed the token its message ids derive from once a stale claim
        -- was taken over (NULL: the holder's own token).
        ALTER TABLE idempotency_keys ADD COLUMN claimed_at INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE idempotency_keys ADD COLUMN seed TEXT;
        UPDATE idempotency_keys SET claimed_at = created_at
        """,
    ),
    (
        8,
        """
        -- The audit log of account changes (gateway/accounts/service.py): before/after are JSON of
        -- the changed public fields, never a secret. Its ids also tell the other processes on
        -- this file which cached accounts to drop (gateway/store/changes.py).
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            account_name TEXT NOT NULL,
            api_key TEXT NOT NULL,
            before TEXT NOT NULL,
            after TEXT NOT NULL,
            reason TEXT
        )
        """,
    ),
    (
        9,
        """
        -- For an account the config lists: the hash of the config's api_secret as last applied,
        -- so a start applies the config's secret only when the config's own value changed
        -- (gateway/accounts/listed.py). NULL: never applied (an operator's account, or older data).
        ALTER TABLE accounts ADD COLUMN config_secret_hash TEXT
        """,
    ),
    (
        10,
        """
        -- Delivery callbacks (gateway/callbacks): where an account's events go, the prefixes any
        -- callback URL of its must start with (space-separated), and the secret that signs them,
        -- kept as is since it must sign (never shown but once).
        ALTER TABLE accounts ADD COLUMN callback_url TEXT;
        ALTER TABLE accounts ADD COLUMN callback_prefixes TEXT NOT NULL DEFAULT '';
        ALTER TABLE accounts ADD COLUMN callback_secret TEXT
        """,
    ),
    (
        11,
        """
        -- Where a record's status changes are posted (the send's callback_url, else its account's
        -- at send time), NULL for none.
        ALTER TABLE records ADD COLUMN callback_url TEXT
        """,
    ),
    (
        12,
        """
        -- The callback outbox (sqlite/outbox.py): one row per status change of a record with a
        -- callback URL, written in the transaction of the change. ``facts`` is the record as the
        -- change left it (JSON), ``lease_token`` the deliverer holding it (its lease ends at
        -- ``next_at``, when the event is due again). Every key grows with time (rowid,
        -- records.id, next_at), so the writes of a busy second land on a few pages at the end of
        -- each tree, not one random page per event.
        -- ``event_id`` is '<record id>-<sequence>-<random>': found through its record's index.
        CREATE TABLE callback_outbox (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            account_id INTEGER NOT NULL,
            record_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('accepted', 'delivered', 'failed')),
            url TEXT NOT NULL,
            facts TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            next_at INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'stopped', 'dead')),
            lease_token TEXT,
            last_error TEXT
        );
        CREATE UNIQUE INDEX callback_outbox_by_record ON callback_outbox (record_id, sequence);
        CREATE INDEX callback_outbox_due ON callback_outbox (next_at, created_at) WHERE state = 'pending';
        CREATE INDEX callback_outbox_dead ON callback_outbox (account_id, created_at) WHERE state = 'dead'
        """,
    ),
    (
        13,
        """
        -- Billing (gateway/billing): what a record is billed as (``segments``, and
        -- ``carrier_counted``: the carrier's own count, which no receipt re-prices), what it was given back
        -- (``refunded_milli``), and, while it waits for a receipt, its number sealed for a status
        -- pull due at ``pull_at``, and ``no_receipt`` once the gateway stopped asking.
        ALTER TABLE records ADD COLUMN segments INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE records ADD COLUMN carrier_counted INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE records ADD COLUMN refunded_milli INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE records ADD COLUMN sealed_phone TEXT;
        ALTER TABLE records ADD COLUMN pull_at INTEGER;
        ALTER TABLE records ADD COLUMN no_receipt INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX records_pull_due ON records (provider, pull_at) WHERE pull_at IS NOT NULL;
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            until INTEGER NOT NULL
        ) WITHOUT ROWID;
        -- A record given up on says so to its callback URL: the outbox learns the event type.
        CREATE TABLE callback_outbox_13 (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            account_id INTEGER NOT NULL,
            record_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('accepted', 'delivered', 'failed', 'no_receipt')),
            url TEXT NOT NULL,
            facts TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            next_at INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'stopped', 'dead')),
            lease_token TEXT,
            last_error TEXT
        );
        INSERT INTO callback_outbox_13 SELECT * FROM callback_outbox;
        DROP TABLE callback_outbox;
        ALTER TABLE callback_outbox_13 RENAME TO callback_outbox;
        CREATE UNIQUE INDEX callback_outbox_by_record ON callback_outbox (record_id, sequence);
        CREATE INDEX callback_outbox_due ON callback_outbox (next_at, created_at) WHERE state = 'pending';
        CREATE INDEX callback_outbox_dead ON callback_outbox (account_id, created_at) WHERE state = 'dead'
        """,
    ),
    (14, quotas.MIGRATION),
)


def migrate(connection: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen, in one write transaction; return the version.

    The transaction makes concurrent starters (a gateway and the accounts CLI) take turns.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
        )
        applied = {row[0] for row in connection.execute("SELECT version FROM schema_migrations")}
        for version, script in MIGRATIONS:
            if version in applied:
                continue
            for statement in script.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, int(time.time())))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return max(version for version, _ in MIGRATIONS)
