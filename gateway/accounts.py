"""Creating accounts (CLI and config bootstrap), rotating their secrets, spotting the shipped one."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable

from gateway.config.model import AccountSeed, BucketConfig
from gateway.credentials import (
    SecretVerifier,
    hash_secret,
    needs_upgrade,
    new_api_key,
    new_api_secret,
)
from gateway.store.base import Account, AccountExists, NewAccount, Store

__all__ = [
    "SHIPPED_DEMO_SECRET", "accounts_with_shipped_secret", "bootstrap_accounts", "create_account",
    "is_loopback", "rotate_secret",
]

log = logging.getLogger("smsedge.accounts")
#: The demo secret in config/gateway.yaml: public, so never accepted on a non-loopback address.
SHIPPED_DEMO_SECRET = "demo-secret-change-me"  # noqa: S105 (public on purpose)


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
            secret_hash=hash_secret(secret),
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
    account = await store.update_account(api_key, secret_hash=hash_secret(secret))
    return (account, secret) if account else None


async def bootstrap_accounts(store: Store, seeds: Iterable[AccountSeed]) -> None:
    """Create the config's accounts that are missing, and make each one's secret the config's.

    Only the secret follows the config on every start (so a leaked or shipped secret is retired by
    changing the file); balance and the other fields belong to the store once the account exists.
    """
    verifier = SecretVerifier()
    for seed in seeds:
        existing = await store.account_by_key(seed.api_key)
        if existing is not None:
            await _follow_config_secret(store, verifier, existing, seed.api_secret)
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


async def _follow_config_secret(
    store: Store, verifier: SecretVerifier, account: Account, secret: str
) -> None:
    stored = account.secret_hash
    matches = await verifier.verify(secret, stored)
    if matches and not needs_upgrade(stored):
        return
    await store.update_account(account.api_key, secret_hash=hash_secret(secret))
    if not matches:
        log.warning("api_secret of account %r replaced by the one in the config", account.name)


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine (a name other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def accounts_with_shipped_secret(store: Store) -> list[str]:
    """Enabled accounts whose secret is still the demo secret shipped in config/gateway.yaml."""
    verifier, names = SecretVerifier(), []
    for account in await store.list_accounts():
        shipped = await verifier.verify(SHIPPED_DEMO_SECRET, account.secret_hash)
        if shipped and not account.disabled:
            names.append(account.name)
    return names
