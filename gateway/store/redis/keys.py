"""Key names and value codecs of the Redis store.

Everything lives under ``redis.key_prefix``. Per-account keys share one hash tag, ``{a:<id>}`` (the
rate limiter's bucket uses the same one), so every script of an account runs in one Redis-Cluster
slot. Lookup keys (API key, name, the account list), leases and the index of parked receipts are
global and only ever used one at a time. A receipt identity (provider, carrier id, number hash)
gets a tag of its own, a digest: carrier ids are the carrier's text and may hold braces; the digest
keeps the key short and the tag well-formed.
"""

from __future__ import annotations

import hashlib

from redis.typing import EncodableT

from gateway.callbacks.urls import split_prefixes
from gateway.store.base import Account
from gateway.store.records import NewRecord, Record, Settlement
from gateway.store.redis.scripts import RECORD_FIELDS

__all__ = [
    "Hash",
    "Keys",
    "StreamEntries",
    "decode_account",
    "decode_record",
    "optional",
    "reserve_values",
    "settle_values",
    "text",
]

# Replies as the store's client gets them: bytes, never str (it leaves ``decode_responses`` off),
# though redis-py types them ``bytes | str``; the store casts a reply it reads to one of these.
Hash = dict[bytes, bytes]
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # Global: one key per lookup, never two in one command.
        self.account_seq = f"{prefix}account_seq"
        self.accounts = f"{prefix}accounts"
        self.readiness_probe = f"{prefix}readiness_probe"
        #: Sorted set of every parked receipt's early key, scored by its receipt time (the cap).
        self.parked_receipts = f"{prefix}parked_receipts"
        #: The audit log (a list, newest first) and the counter numbering it: one slot, one script.
        self.audit_seq = f"{prefix}{{audit}}:seq"
        self.audit_log = f"{prefix}{{audit}}:log"
        #: A stream of the API keys of changed accounts, which every gateway follows (one key).
        self.account_changes = f"{prefix}account-changes"

    def lease(self, name: str) -> str:
        """One lease (``Billing.take_lease``): global, alone in its script."""
        return f"{self.prefix}lease:{name}"

    def by_key(self, api_key: str) -> str:
        return f"{self.prefix}key:{api_key}"

    def by_name(self, name: str) -> str:
        return f"{self.prefix}name:{name}"

    # per account: one slot

    def _tag(self, account_id: int) -> str:
        return f"{self.prefix}{{a:{account_id}}}:"

    def account(self, account_id: int) -> str:
        return self._tag(account_id) + "account"

    def messages(self, account_id: int) -> str:
        """message_id → record id."""
        return self._tag(account_id) + "msg"

    def records(self, account_id: int, status: str | None = None) -> str:
        """Sorted set of the account's records (of one status), scored by created_ms."""
        return self._tag(account_id) + ("recs" if status is None else f"recs:{status}")

    def record_base(self, account_id: int) -> str:
        """Record hashes are this plus the record id (the scripts append it)."""
        return self._tag(account_id) + "r:"

    def pulls(self, account_id: int, provider: str) -> str:
        """Sorted set of ``provider``'s records awaiting a receipt with a sealed number, scored by
        when to pull their status (the scripts build it from the record-key base too)."""
        return self._tag(account_id) + f"pulls:{provider}"

    def unreceipted(self, account_id: int, provider: str) -> str:
        """Sorted set of ``provider``'s records awaiting a receipt, scored by created_ms (give-up)."""
        return self._tag(account_id) + f"unreceipted:{provider}"

    def daily(self, account_id: int) -> str:
        return self._tag(account_id) + "daily"

    def quota(self, account_id: int) -> str:
        """The counts the account's limits hold (``quota_scripts``)."""
        return self._tag(account_id) + "quota"

    def operation(self, account_id: int, operation_id: str) -> str:
        """Marks a balance change as done, briefly, so a retried command cannot apply it twice."""
        return self._tag(account_id) + f"op:{operation_id}"

    def idempotency(self, account_id: int, key: str) -> str:
        """One Idempotency-Key of the account (visible ASCII; braces after the tag are harmless)."""
        return self._tag(account_id) + f"idem:{key}"

    # per receipt identity: one slot

    def receipt(self, provider: str, carrier_id: str, phone_hash: str) -> tuple[str, str]:
        """(match set of "account:record", parked early receipt)."""
        digest = hashlib.sha256(f"{provider}\n{carrier_id}\n{phone_hash}".encode()).hexdigest()[:32]
        tag = f"{self.prefix}{{rc:{digest}}}:"
        return tag + "match", tag + "early"


def optional(value: str | None) -> str:
    """A script argument that keeps None apart from the empty string."""
    return "" if value is None else "v" + value


def reserve_values(r: NewRecord) -> list[EncodableT]:
    """A record as RESERVE takes it (``scripts``)."""
    values: list[EncodableT] = [r.message_id, r.phone, r.template_id, r.provider, int(r.price_milli)]
    return [*values, r.phone_hash, optional(r.callback_url), r.segments]


def settle_values(s: Settlement) -> list[EncodableT]:
    """A settlement as SETTLE takes it (``scripts``): no pull time is ""."""
    values: list[EncodableT] = [s.message_id, s.status, s.provider, int(s.price_milli)]
    values += [optional(s.carrier_id), optional(s.error), s.segments, optional(s.sealed_phone)]
    return [*values, "" if s.pull_at_ms is None else s.pull_at_ms, int(s.carrier_counted)]


def text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def decode_account(data: Hash) -> Account:
    fields = {key.decode(): value.decode() for key, value in data.items()}
    rate, burst = fields.get("rate"), fields.get("burst")
    return Account(
        id=int(fields["id"]),
        name=fields["name"],
        api_key=fields["api_key"],
        secret_hash=fields["secret_hash"],
        balance_milli=int(fields["balance_milli"]),
        verification_status=fields["verification_status"],
        disabled=fields.get("disabled") == "1",
        providers=tuple(p for p in fields.get("providers", "").split(",") if p),
        rate=float(rate) if rate is not None else None,
        burst=int(burst) if burst is not None else None,
        total_sent=int(fields.get("total_sent", 0)),
        callback_url=fields.get("callback_url"),
        callback_prefixes=split_prefixes(fields.get("callback_prefixes")),
        callback_secret=fields.get("callback_secret"),
        daily_limit=_count(fields.get("daily_limit")),
        monthly_limit=_count(fields.get("monthly_limit")),
    )


def _count(value: str | None) -> int | None:
    return int(value) if value is not None else None


def decode_record(row: list[bytes | None]) -> Record:
    values = dict(zip(RECORD_FIELDS, (text(value) for value in row), strict=True))
    return Record(
        id=int(values["id"] or 0),
        message_id=values["message_id"] or "",
        phone=values["phone"] or "",
        template_id=values["template_id"] or "",
        provider=values["provider"] or "",
        status=values["status"] or "",
        error=values["error"],
        created_ms=int(values["created_ms"] or 0),
        updated_ms=int(values["updated_ms"] or 0),
        price_milli=int(values["price_milli"] or 0),
        carrier_id=values["carrier_id"],
        callback_url=values["callback_url"],
        # Records written before billing knew segments have none of these fields.
        segments=int(values["segments"] or 1),
        refunded_milli=int(values["refunded_milli"] or 0),
        no_receipt=values["no_receipt"] == "1",
    )
