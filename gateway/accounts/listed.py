"""The accounts the config lists (``accounts:``): created when missing, their secret following the
config's own changes, on every start and reload.

Only a secret the config itself changed replaces the stored one (the store keeps a salted hash of
the one it last applied), so a secret an operator rotated since is not undone by the next start.
Balance and the other fields are never overwritten. Every process of a fleet runs this at once; the
store applies each change once (``Store.apply_config_secret``), audited with the actor ``config``.
Details: (docs/accounts.md, "The accounts the config lists").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gateway.accounts.credentials import SecretVerifier, hash_secret, needs_upgrade
from gateway.accounts.service import AccountService
from gateway.config.model import AccountSeed
from gateway.store.base import Account, AccountExists, Store

__all__ = ["CONFIG_ACTOR", "bootstrap_accounts"]

log = logging.getLogger("smsedge.accounts")
CONFIG_ACTOR = "config"


async def bootstrap_accounts(store: Store, seeds: Iterable[AccountSeed]) -> None:
    """Create the listed accounts that are missing; give each the config's secret if it changed."""
    service, verifier = AccountService(store), SecretVerifier()
    for seed in seeds:
        account = await service.account(seed.api_key)
        if account is None:
            if await _created(service, seed):
                continue
            account = await service.account(seed.api_key)  # another process may have just made it
            if account is None:
                log.warning(
                    "account %r: the name (or one that reads the same) is taken by another"
                    " key; config entry skipped",
                    seed.name,
                )
                continue
        await _follow_config_secret(service, verifier, account, seed.api_secret)


async def _created(service: AccountService, seed: AccountSeed) -> bool:
    try:
        await service.create(
            CONFIG_ACTOR,
            seed.name,
            balance_milli=seed.balance_milli,
            verification_status=seed.verification_status,
            providers=seed.providers,
            ratelimit=seed.ratelimit,
            callback_url=seed.callback_url,
            callback_prefixes=seed.callback_prefixes,
            daily_limit=seed.daily_limit,
            monthly_limit=seed.monthly_limit,
            api_key=seed.api_key,
            api_secret=seed.api_secret,
            listed=True,
        )
    except AccountExists:
        return False
    log.info("created account %r from config", seed.name)
    return True


async def _follow_config_secret(
    service: AccountService, verifier: SecretVerifier, account: Account, secret: str
) -> None:
    store, api_key = service.store, account.api_key
    applied = await store.config_secret_hash(api_key)
    current = await verifier.verify(secret, account.secret_hash)
    if applied is not None and await verifier.verify(secret, applied):
        if not current:
            log.info(
                "account %r keeps the api_secret rotated since the config's was applied; a new"
                " api_secret in the config would replace it",
                account.name,
            )
        return
    if current:  # the account has the config's new value already: recorded (a legacy hash renewed)
        renewed = hash_secret(secret)
        await store.apply_config_secret(
            api_key, applied, renewed, renewed if needs_upgrade(account.secret_hash) else None
        )
    elif await service.follow_config_secret(CONFIG_ACTOR, api_key, applied, secret):
        log.warning(
            "api_secret of account %r replaced by the config's: the config's api_secret"
            " changed since it was last applied",
            account.name,
        )
