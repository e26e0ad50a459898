"""The record store: accounts, balances, counters and send records.

:class:`Store` is the interface every backend implements; the handlers only see it, the plain
account records below and the send records of :mod:`gateway.store.records`. Money is integer
milli-yuan throughout, time integer epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import msgspec

from gateway.phones import scrub
from gateway.store.audit import AuditEntry, AuditPage
from gateway.store.billing import Billing
from gateway.store.callbacks import CallbackOutbox
from gateway.store.quotas import Period
from gateway.store.records import (
    NewRecord,
    ReceiptsApplied,
    ReceiptUpdate,
    Record,
    RecordPage,
    RecordQuery,
    Settlement,
)

__all__ = [
    "UPDATABLE",
    "Account",
    "AccountExists",
    "AccountState",
    "IdempotencyClaim",
    "NewAccount",
    "Store",
    "StoreUnavailable",
    "check_updatable",
]


class StoreUnavailable(Exception):
    """The store cannot be read or written right now: the caller answers 503."""


@dataclass(frozen=True, slots=True)
class NewAccount:
    name: str
    api_key: str
    secret_hash: str
    balance_milli: int
    verification_status: str
    providers: tuple[str, ...] = ()
    rate: float | None = None
    burst: int | None = None
    #: For an account the config lists: the hash of its api_secret, as applied (``gateway.accounts.listed``).
    config_secret_hash: str | None = None
    callback_url: str | None = None  # checked against callback_prefixes (``gateway.callbacks.urls``)
    callback_prefixes: tuple[str, ...] = ()
    daily_limit: int | None = None  # messages a day / month (``gateway.store.quotas``); None: no cap
    monthly_limit: int | None = None


class AccountExists(Exception):
    """An account with that name or key is already there."""


#: The account fields ``Store.update_account`` may change.
UPDATABLE = frozenset(
    {
        "verification_status",
        "disabled",
        "rate",
        "burst",
        "secret_hash",
        "providers",
        "callback_url",
        "callback_prefixes",
        "callback_secret",
        "daily_limit",
        "monthly_limit",
    }
)


def check_updatable(changes: dict[str, object]) -> None:
    """Refuse a change to a field ``update_account`` may not touch (the id, name, key, balance)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")


class Account(msgspec.Struct, frozen=True):
    id: int
    name: str
    api_key: str
    secret_hash: str
    balance_milli: int
    verification_status: str
    disabled: bool
    providers: tuple[str, ...]
    rate: float | None
    burst: int | None
    total_sent: int
    callback_url: str | None = None  # where its events go when a send names none
    callback_prefixes: tuple[str, ...] = ()  # what any callback URL of its must start with
    #: Signs its callbacks: kept as is (it must sign, not only verify), never shown but once.
    callback_secret: str | None = None
    daily_limit: int | None = None  # messages a day / month (``gateway.store.quotas``); None: no cap
    monthly_limit: int | None = None

    def with_money(self, balance_milli: int, total_sent: int) -> Account:
        """This account with another balance and count (``msgspec.structs.replace``, without its
        per-call field lookups: the account cache does this on every commit)."""
        return Account(
            self.id,
            self.name,
            self.api_key,
            self.secret_hash,
            balance_milli,
            self.verification_status,
            self.disabled,
            self.providers,
            self.rate,
            self.burst,
            total_sent,
            self.callback_url,
            self.callback_prefixes,
            self.callback_secret,
            self.daily_limit,
            self.monthly_limit,
        )

    def public(self) -> dict[str, object]:
        """What the CLI may print: all but the secrets, the name masked (old names may hold a number)."""
        return {
            "name": scrub(self.name),
            "api_key": self.api_key,
            "balance": self.balance_milli / 1000,
            "verification_status": self.verification_status,
            "disabled": self.disabled,
            "providers": list(self.providers),
            "ratelimit": {"rate": self.rate, "burst": self.burst} if self.rate else None,
            "total_sent": self.total_sent,
            "callback_url": self.callback_url,
            "callback_prefixes": list(self.callback_prefixes),
            "callback_signed": self.callback_secret is not None,
            "daily_limit": self.daily_limit,
            "monthly_limit": self.monthly_limit,
        }


class AccountState(msgspec.Struct, frozen=True):
    """What a committed write left an account at: a store that knows it (SQLite) reports it to
    whoever ``watch``-es it, so an account cache stays exact for this process's own writes."""

    account_id: int
    balance_milli: int
    total_sent: int
    day: str | None = None  # the day whose count ``day_sent`` is, when the write counted sends
    day_sent: int | None = None
    #: The account's count of writes, where replies may arrive out of order (Redis): a state
    #: with a lower one than a state already applied is older, and ignored. None: in order.
    version: int | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """What claiming an Idempotency-Key found.

    ``state``: ``new`` (the key is the caller's now, run the request), ``pending`` (a request with
    the same body holds it and has not finished), ``stale`` (such a request held it past its lease,
    so it presumably died: the key is the caller's now, and ``previous_token`` is the token the
    earlier attempts' message ids derive from), ``replay`` (finished: ``status`` and ``body`` are
    its response) or ``conflict`` (the key holds another body's fingerprint).
    """

    state: str
    status: int = 0
    body: bytes = b""
    previous_token: str = ""


class Store(CallbackOutbox, Billing, Protocol):
    """What every backend keeps: accounts, records, idempotency keys, the audit log, the
    callback outbox (``gateway.store.callbacks``) and billing's (``gateway.store.billing``)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def probe_write(self, now_ms: int) -> None: ...

    async def create_account(self, account: NewAccount, now_ms: int) -> Account: ...
    async def account_by_key(self, api_key: str) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...
    async def update_account(self, api_key: str, **changes: object) -> Account | None: ...
    async def top_up(self, api_key: str, amount_milli: int) -> Account | None: ...
    async def today_sent(self, account_id: int, day: str) -> int: ...

    async def config_secret_hash(self, api_key: str) -> str | None:
        """The hash of the config's api_secret last applied to the account (``gateway.accounts.listed``);
        None when the config never applied one, or there is no such account."""
        ...

    async def apply_config_secret(
        self, api_key: str, expected: str | None, config_hash: str, secret_hash: str | None
    ) -> Account | None:
        """Record ``config_hash`` as the config's applied secret and make ``secret_hash`` (unless
        None) the account's, only if the recorded one is still ``expected``: of processes applying
        one change at once, one does. The account as changed; None if another process got there
        first, or there is no such account."""
        ...

    async def reserve(
        self, account_id: int, records: list[NewRecord], now_ms: int, counted: Period | None = None
    ) -> bool:
        """Debit the price of every record and write them ``pending``, atomically; False if short.
        ``counted``: count them in that day and month, held to the account's limits (else
        ``QuotaExceeded``, nothing written); None: neither counted nor limited."""
        ...

    async def settle(
        self, account_id: int, results: list[Settlement], now_ms: int, day: str, counted: Period | None = None
    ) -> None:
        """Apply final statuses (only to pending records), refund refusals, count acceptances;
        give the refusals back to ``counted``, the period their reserve counted them in."""
        ...

    async def month_sent(self, account_id: int, month: str) -> int:
        """What reserves counted in ``month`` (``YYYY-MM``) less what settles gave back."""
        ...

    async def apply_receipts(
        self, provider: str, receipts: list[ReceiptUpdate], now_ms: int
    ) -> ReceiptsApplied:
        """Finalise the ``pending`` records the receipts name by (provider, carrier_id, phone_hash).
        Final records stay as they are (duplicates are no-ops); a receipt naming no record yet is
        kept for a while and applied when ``settle`` gives that record its carrier id. Never
        refunds: the carrier charged for the attempt. A receipt's ``segments`` re-prices a record
        the carrier has not counted yet (once: the count is the carrier's from then on)."""
        ...

    async def records(self, account_id: int, query: RecordQuery) -> RecordPage: ...

    async def find_records(self, account_id: int, message_ids: list[str]) -> list[Record]:
        """The account's records with these message ids, in that order; unknown ids are left out."""
        ...

    async def claim_idempotency(
        self, account_id: int, key: str, fingerprint: str, token: str, now_ms: int, ttl_ms: int, lease_ms: int
    ) -> IdempotencyClaim:
        """Atomically take ``key`` for ``token`` until ``now_ms + ttl_ms``, or say who holds it.

        An expired key counts as absent. An unfinished claim at least ``lease_ms`` old is taken
        over (``stale``): a fresh lease for ``token``, so of concurrent callers only one gets it.
        Claiming again with the same token while the claim is unfinished answers what the claim
        did (``new``, or ``stale`` again), so a command retried after a lost reply cannot lock its
        owner out.
        """
        ...

    async def finish_idempotency(
        self, account_id: int, key: str, token: str, status: int, body: bytes
    ) -> None:
        """Store the response of the claim ``token`` holds (kept until the claim expires)."""
        ...

    async def release_idempotency(self, account_id: int, key: str, token: str) -> None:
        """Drop the unfinished claim ``token`` holds, so the key can be used again."""
        ...

    # the audit log; account changes for every process's cache (``gateway.store.changes``)

    async def append_audit(self, entry: AuditEntry) -> None:
        """Keep ``entry`` (the store numbers it) and announce its account as changed to every
        process sharing the store (``account_changes``)."""
        ...

    async def audit_page(self, page: int, per_page: int) -> AuditPage: ...

    async def account_changes(self, cursor: str, wait: float) -> tuple[str, list[str]]:
        """API keys announced after ``cursor``, and the cursor to ask from next (``""``: the
        current one, no keys). Waits up to ``wait`` seconds for one (a store may poll sooner)."""
        ...

    async def find_message(self, message_id: str) -> tuple[Account, Record] | None:
        """The record with this message id, whichever account's, and its account."""
        ...
