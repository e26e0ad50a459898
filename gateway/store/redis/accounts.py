"""Accounts on Redis: a hash per account, and the claims that find it by name and by API key.

An account is written whole before its claims are taken (SET NX), so a claim always points to a
whole account, and of two concurrent creators of one name or key exactly one wins. Run twice (a
retried command after a lost reply), creation finds its own claims and goes on. The hash of the
config's api_secret as last applied (``gateway.accounts.listed``) is a field of the account's hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, cast

from redis.typing import EncodableT, FieldT

from gateway.callbacks.urls import join_prefixes
from gateway.redis.client import Lua, SharedClient
from gateway.redis.health import RedisHealth, guarded
from gateway.store.base import Account, AccountExists, NewAccount, StoreUnavailable
from gateway.store.redis.keys import Keys, optional, text

__all__ = ["ConfigSecrets", "create_account", "update_account"]

#: The account hash's field with the hash of the config's api_secret as last applied.
CONFIG_FIELD = "config_secret_hash"

# KEYS: the account. ARGV: expected (``optional``), config hash, secret hash (``optional``).
# 1 when applied; 0 when the recorded value is not the expected one, or the account is gone. Run
# twice (a retry after a lost reply), it finds its own config hash, salted so no one else's: 1.
_APPLY_FROM_CONFIG = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local recorded = redis.call('HGET', KEYS[1], 'config_secret_hash')
if recorded == ARGV[2] then return 1 end
if (recorded and 'v' .. recorded or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'config_secret_hash', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'secret_hash', string.sub(ARGV[3], 2)) end
return 1
"""


def _field(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if name == "callback_prefixes":
        return join_prefixes(cast("Iterable[str]", value))
    if isinstance(value, tuple | list):
        return ",".join(value)
    return repr(value) if isinstance(value, float) else str(value)


async def create_account(client: SharedClient, keys: Keys, account: NewAccount, now_ms: int) -> int:
    """Write the account and claim its name and key; its id, or :class:`AccountExists`."""
    account_id = await client.incr(keys.account_seq)
    fields: dict[FieldT, EncodableT] = {
        "id": account_id,
        "name": account.name,
        "api_key": account.api_key,
        "secret_hash": account.secret_hash,
        "balance_milli": account.balance_milli,
        "verification_status": account.verification_status,
        "disabled": "0",
        "providers": ",".join(account.providers),
        "total_sent": 0,
        "created_ms": now_ms,
        "record_seq": 0,
    }
    if account.rate is not None:
        fields["rate"] = repr(float(account.rate))
    if account.burst is not None:
        fields["burst"] = account.burst
    if account.config_secret_hash is not None:
        fields[CONFIG_FIELD] = account.config_secret_hash
    if account.callback_url is not None:
        fields["callback_url"] = account.callback_url
    if account.callback_prefixes:
        fields["callback_prefixes"] = join_prefixes(account.callback_prefixes)
    for name, limit in (("daily_limit", account.daily_limit), ("monthly_limit", account.monthly_limit)):
        if limit is not None:
            fields[name] = limit
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
    client: SharedClient, keys: Keys, account_id: int, changes: Mapping[str, object]
) -> None:
    """Set (or, for None, remove) the given fields of the account, in one transaction."""
    key = keys.account(account_id)
    async with client.pipeline(transaction=True) as pipe:
        for name, value in changes.items():
            if value is None:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, _field(name, value))
        await pipe.execute()


class ConfigSecrets:
    """Mixed into :class:`~gateway.store.redis.store.RedisStore`: ``config_secret_hash`` and
    ``apply_config_secret`` on its client, keys and account reads."""

    client: SharedClient
    keys: Keys
    health: RedisHealth

    if TYPE_CHECKING:  # the store's own

        async def _id(self, api_key: str) -> int | None: ...
        async def _account(self, account_id: int) -> Account | None: ...

    @guarded(StoreUnavailable)
    async def config_secret_hash(self, api_key: str) -> str | None:
        account_id = await self._id(api_key)
        found = (
            None
            if account_id is None
            else await self.client.hget(self.keys.account(account_id), CONFIG_FIELD)
        )
        return text(found)

    @guarded(StoreUnavailable)
    async def apply_config_secret(
        self, api_key: str, expected: str | None, config_hash: str, secret_hash: str | None
    ) -> Account | None:
        """In one script: of concurrent callers, one applies it."""
        account_id = await self._id(api_key)
        if account_id is None or not await Lua(self.client, _APPLY_FROM_CONFIG)(
            (self.keys.account(account_id),), (optional(expected), config_hash, optional(secret_hash))
        ):
            return None
        return await self._account(account_id)
