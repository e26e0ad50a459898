"""Creating accounts (CLI and config bootstrap) and rotating their secrets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from gateway.config import AccountSeed, BucketConfig
from gateway.credentials import hash_secret, new_api_key, new_api_secret
from gateway.store import Account, AccountExists, NewAccount, Store

__all__ = ["bootstrap_accounts", "create_account", "rotate_secret"]

log = logging.getLogger("smsedge.accounts")


async def create_account(
    store: Store,
    name: str,
    *,
    balance_milli: int = 0,
    verification_status: str = "approved",
    providers: tuple[str, ...] = (),
    ratelimit: BucketConfig | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> tuple[Account, str]:
    """Create an account; return it with its secret, which is stored only as a hash."""
    secret = api_secret or new_api_secret()
    account = await store.create_account(
        NewAccount(
            name=name,
            api_key=api_key or new_api_key(),
            secret_hash=await asyncio.to_thread(hash_secret, secret),
            balance_milli=balance_milli,
            verification_status=verification_status,
            providers=providers,
            rate=ratelimit.rate if ratelimit else None,
            burst=ratelimit.burst if ratelimit else None,
        ),
        int(time.time() * 1000),
    )
    return account, secret


async def rotate_secret(store: Store, api_key: str) -> tuple[Account, str] | None:
    secret = new_api_secret()
    digest = await asyncio.to_thread(hash_secret, secret)
    account = await store.update_account(api_key, secret_hash=digest)
    return (account, secret) if account else None


async def bootstrap_accounts(store: Store, seeds: Iterable[AccountSeed]) -> None:
    """Create the config's accounts that are missing; an existing one is never overwritten."""
    for seed in seeds:
        if await store.account_by_key(seed.api_key) is not None:
            continue
        try:
            await create_account(
                store, seed.name, balance_milli=seed.balance_milli,
                verification_status=seed.verification_status, providers=seed.providers,
                ratelimit=seed.ratelimit, api_key=seed.api_key, api_secret=seed.api_secret,
            )
        except AccountExists:
            log.warning("account %r exists with another key; config entry skipped", seed.name)
        else:
            log.info("created account %r from config", seed.name)
