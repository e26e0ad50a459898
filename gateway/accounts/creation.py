"""Creating accounts (CLI, admin API, the config's list), rotating their secrets, spotting the
shipped one."""

from __future__ import annotations

import ipaddress
import time
from typing import TypedDict, Unpack

from gateway.accounts.credentials import SecretVerifier, hash_secret, new_api_key, new_api_secret
from gateway.config.model import BucketConfig
from gateway.store.base import Account, NewAccount, Store

__all__ = [
    "SHIPPED_DEMO_SECRET",
    "AccountTerms",
    "accounts_with_shipped_secret",
    "create_account",
    "is_loopback",
    "rotate_secret",
]

#: The demo secret in config/gateway.yaml: public, so never accepted on a non-loopback address.
SHIPPED_DEMO_SECRET = "demo-secret-change-me"  # noqa: S105 (public on purpose)


class AccountTerms(TypedDict, total=False):
    """What a new account may be given besides its name, declared once for :func:`create_account`
    and ``AccountService.create``; what it gets where nothing is said: ``_DEFAULT_TERMS``."""

    balance_milli: int
    verification_status: str
    providers: tuple[str, ...]  # (): every provider
    ratelimit: BucketConfig | None  # None: the default bucket
    api_key: str | None  # None: a new key
    api_secret: str | None  # None: a new secret
    listed: bool  # the config lists it, and ``api_secret`` is the config's (recorded as applied)
    callback_url: str | None  # checked by the caller (``gateway.callbacks.urls``)
    callback_prefixes: tuple[str, ...]
    daily_limit: int | None  # messages a day / month (``gateway.store.quotas``); None: no cap
    monthly_limit: int | None


_DEFAULT_TERMS = AccountTerms(balance_milli=0, verification_status="approved", providers=(), listed=False)


async def create_account(store: Store, name: str, **terms: Unpack[AccountTerms]) -> tuple[Account, str]:
    """Create an account; return it with its secret, which is stored only as a hash."""
    given = _DEFAULT_TERMS | terms
    secret = given.get("api_secret") or new_api_secret()
    secret_hash = hash_secret(secret)
    ratelimit = given.get("ratelimit")
    account = await store.create_account(
        NewAccount(
            name=name,
            api_key=given.get("api_key") or new_api_key(),
            secret_hash=secret_hash,
            balance_milli=given["balance_milli"],
            verification_status=given["verification_status"],
            providers=given["providers"],
            rate=ratelimit.rate if ratelimit else None,
            burst=ratelimit.burst if ratelimit else None,
            config_secret_hash=secret_hash if given["listed"] else None,
            callback_url=given.get("callback_url"),
            callback_prefixes=given.get("callback_prefixes", ()),
            daily_limit=given.get("daily_limit"),
            monthly_limit=given.get("monthly_limit"),
        ),
        int(time.time() * 1000),
    )
    return account, secret


async def rotate_secret(store: Store, api_key: str) -> tuple[Account, str] | None:
    secret = new_api_secret()
    account = await store.update_account(api_key, secret_hash=hash_secret(secret))
    return (account, secret) if account else None


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine (a name other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def accounts_with_shipped_secret(store: Store) -> list[Account]:
    """Enabled accounts whose secret is still the demo secret shipped in config/gateway.yaml."""
    verifier, found = SecretVerifier(), []
    for account in await store.list_accounts():
        shipped = await verifier.verify(SHIPPED_DEMO_SECRET, account.secret_hash)
        if shipped and not account.disabled:
            found.append(account)
    return found
