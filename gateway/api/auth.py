"""Authentication: every route of the API sub-app needs ``X-API-Key`` and ``X-API-Secret``.

A missing header, an unknown key and a wrong secret get the same 401, the last two after the same
work (one account lookup, one fast hash), so a caller cannot probe which keys exist, and a refused
request costs no more than an accepted one. A disabled account is refused only after its secret is proven.
The lookup is served by the store's account cache (``gateway.store.cache``): another process's
change (a disabled account, a rotated secret) is seen within its documented bound, ``ACCOUNT_CACHE_TTL``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.credentials import hash_secret, needs_upgrade
from gateway.errors import account_disabled, store_unavailable, unauthorized
from gateway.keys import ACCOUNT, METRICS, STORE, VERIFIER
from gateway.store.base import StoreUnavailable

__all__ = ["authentication"]

log = logging.getLogger("smsedge.auth")
_MAX_KEY_LENGTH = 128
_MAX_SECRET_LENGTH = 256


def authentication() -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            # Unmatched paths fall through to the 404/405 answer: there is nothing there to protect.
            return await handler(request)
        key = request.headers.get("X-API-Key", "")
        secret = request.headers.get("X-API-Secret", "")
        if not (0 < len(key) <= _MAX_KEY_LENGTH and 0 < len(secret) <= _MAX_SECRET_LENGTH):
            request.app[METRICS].auth_failures.inc()
            raise unauthorized()
        try:
            account = await request.app[STORE].account_by_key(key)
        except StoreUnavailable as exc:  # one line, no traceback: an outage answers many of these
            log.warning("store unavailable during authentication: %s", exc)
            raise store_unavailable() from None
        stored = account.secret_hash if account else None
        if not await request.app[VERIFIER].verify(secret, stored) or account is None:
            request.app[METRICS].auth_failures.inc()
            raise unauthorized()
        if account.disabled:
            raise account_disabled()
        if needs_upgrade(account.secret_hash):
            await _upgrade_hash(request, key, secret)
        request[ACCOUNT] = account
        return await handler(request)

    return middleware


async def _upgrade_hash(request: web.Request, key: str, secret: str) -> None:
    """Replace a legacy slow hash with the fast one, now that the secret is proven."""
    try:
        await request.app[STORE].update_account(key, secret_hash=hash_secret(secret))
    except StoreUnavailable:
        log.warning("store unavailable: secret hash not upgraded, will retry on the next login")
