"""Accounts on Redis: a hash per account, and the claims that find it by name and by API key.

An account is written whole before its claims are taken (SET NX), so a claim always points to a
whole account, and of two concurrent creators of one name or key exactly one wins. Run twice (a
retried command after a lost reply), creation finds its own claims and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from gateway.store.base import AccountExists, NewAccount
from gateway.store.redis.keys import Keys

__all__ = ["create_account", "update_account"]


def _field(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple | list):
        return ",".join(value)
    return repr(value) if isinstance(value, float) else str(value)


async def create_account(client: Redis, keys: Keys, account: NewAccount, now_ms: int) -> int:
    """Write the account and claim its name and key; its id, or :class:`AccountExists`."""
    account_id = await client.incr(keys.account_seq)
    fields = {
        "id": account_id, "name": account.name, "api_key": account.api_key,
        "secret_hash": account.secret_hash, "balance_milli": account.balance_milli,
        "verification_status": account.verification_status, "disabled": "0",
        "providers": ",".join(account.providers), "total_sent": 0, "created_ms": now_ms,
        "record_seq": 0,
    }
    if account.rate is not None:
        fields["rate"] = repr(float(account.rate))
    if account.burst is not None:
        fields["burst"] = account.burst
    await client.hset(keys.account(account_id), mapping=fields)
    claimed: list[str] = []
    for claim in (keys.by_name(account.name), keys.by_key(account.api_key)):
        # A claim holding our id is ours: set by a first attempt whose reply was lost.
        if not await client.set(claim, account_id, nx=True) and (
            await client.get(claim) != str(account_id).encode()
        ):
            if claimed:
                await client.delete(*claimed)
            await client.delete(keys.account(account_id))
            raise AccountExists(account.name)
        claimed.append(claim)
    await client.sadd(keys.accounts, account_id)
    return account_id


async def update_account(
    client: Redis, keys: Keys, account_id: int, changes: Mapping[str, object]
) -> None:
    """Set (or, for None, remove) the given fields of the account, in one transaction."""
    key = keys.account(account_id)
    async with client.pipeline(transaction=True) as pipe:
        for name, value in changes.items():
            if value is None:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, _field(value))
        await pipe.execute()
