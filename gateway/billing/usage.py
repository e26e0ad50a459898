"""The usage report: per account, carrier and day — messages, segments, charged, refunded.

The same figures the records hold, added up by the store per quarter hour (``Store.usage``) and here
into the days of ``server.timezone``; the CLI (``run.py usage``) and the admin API
(``GET /admin/api/usage``) both print this. Money in yuan, as the records show prices.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from gateway.phones import scrub
from gateway.store.base import Store

__all__ = ["MAX_DAYS", "UnknownAccount", "UsageRow", "parse_day", "usage_csv", "usage_report"]

MAX_DAYS = 366  # a report spans at most a year: a bigger one is several reports


class UnknownAccount(LookupError):
    """``--account`` / ``account=`` names no account."""


class UsageRow(msgspec.Struct, frozen=True):
    day: str  # YYYY-MM-DD in server.timezone
    account: str  # the account's name (scrubbed, as the CLI lists it)
    api_key: str
    provider: str
    messages: int
    segments: int
    charged: float  # yuan, at most 3 decimals
    refunded: float


def parse_day(text: str, what: str) -> date:
    """A ``YYYY-MM-DD`` day, or ValueError naming ``what``."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what}: a day as YYYY-MM-DD") from None


def _midnight_ms(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(), zone).timestamp() * 1000)


async def usage_report(
    store: Store, zone: ZoneInfo, first: date, last: date, api_key: str | None = None
) -> list[UsageRow]:
    """The rows from ``first`` to ``last`` (both included), by day, account name and carrier.
    Raises ValueError for a bad range, :class:`UnknownAccount`, StoreUnavailable."""
    if last < first or (last - first).days >= MAX_DAYS:
        raise ValueError(f"from must not be after to, and the range at most {MAX_DAYS} days")
    accounts = {account.id: account for account in await store.list_accounts()}
    account_id = None
    if api_key is not None:
        account_id = next((a.id for a in accounts.values() if a.api_key == api_key), None)
        if account_id is None:
            raise UnknownAccount(api_key)
    buckets = await store.usage(
        _midnight_ms(first, zone), _midnight_ms(last + timedelta(days=1), zone), account_id
    )
    sums: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for bucket in buckets:
        day = datetime.fromtimestamp(bucket.start_ms / 1000, zone).date().isoformat()
        total = sums[(day, bucket.account_id, bucket.provider)]
        for place, value in enumerate(
            (bucket.messages, bucket.segments, bucket.charged_milli, bucket.refunded_milli)
        ):
            total[place] += value
    rows = [
        UsageRow(
            day,
            scrub(accounts[owner].name) if owner in accounts else f"#{owner}",
            accounts[owner].api_key if owner in accounts else "",
            provider,
            messages,
            segments,
            charged / 1000,
            refunded / 1000,
        )
        for (day, owner, provider), (messages, segments, charged, refunded) in sums.items()
    ]
    return sorted(rows, key=lambda row: (row.day, row.account, row.provider))


def usage_csv(rows: list[UsageRow]) -> str:
    """The rows as CSV with a header line, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(UsageRow.__struct_fields__)
    writer.writerows(msgspec.structs.astuple(row) for row in rows)
    return out.getvalue()
