"""Authentication: every API route needs ``X-API-Key`` and ``X-API-Secret``.

A missing header, an unknown key and a wrong secret get the same 401, the last two after the same
work (one account lookup, one fast hash), so a caller cannot probe which keys exist, and a refused
request costs no more than an accepted one. A disabled account is refused only after its secret is proven.
The lookup is served by the store's account cache (``gateway.store.cache``): another process's
change (a disabled account, a rotated secret) is seen within its documented bound, ``ACCOUNT_CACHE_TTL``.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.accounts.credentials import hash_secret, needs_upgrade
from gateway.errors import account_disabled, store_unavailable, unauthorized
from gateway.keys import ACCOUNT, METRICS, STORE, VERIFIER
from gateway.store.base import Account, StoreUnavailable

__all__ = ["authenticate"]

log = logging.getLogger("smsedge.auth")
_MAX_KEY_LENGTH = 128
_MAX_SECRET_LENGTH = 256


async def authenticate(request: web.Request) -> Account:
    """The caller's account, once its key and secret are proven (also kept as ``request[ACCOUNT]``)."""
    key = request.headers.get("X-API-Key", "")
    secret = request.headers.get("X-API-Secret", "")
    app = request.app
    if not (0 < len(key) <= _MAX_KEY_LENGTH and 0 < len(secret) <= _MAX_SECRET_LENGTH):
        app[METRICS].auth_failures.inc()
        raise unauthorized()
    try:
        account = await app[STORE].account_by_key(key)
    except StoreUnavailable as exc:  # one line, no traceback: an outage answers many of these
        log.warning("store unavailable during authentication: %s", exc)
        raise store_unavailable() from None
    stored = account.secret_hash if account else None
    if not await app[VERIFIER].verify(secret, stored) or account is None:
        app[METRICS].auth_failures.inc()
        raise unauthorized()
    if account.disabled:
        raise account_disabled()
    if needs_upgrade(account.secret_hash):
        await _upgrade_hash(request, key, secret)
    request[ACCOUNT] = account
    return account


async def _upgrade_hash(request: web.Request, key: str, secret: str) -> None:
    """Replace a legacy slow hash with the fast one, now that the secret is proven."""
    try:
        await request.app[STORE].update_account(key, secret_hash=hash_secret(secret))
    except StoreUnavailable:
        log.warning("store unavailable: secret hash not upgraded, will retry on the next login")
