"""Authentication of the admin API: ``Authorization: Bearer <token>``, a token of ``admin.tokens``.

The config keeps only a keyed hash of each token (``gateway.config.model.AdminToken``, the hash
tenant secrets use: ``gateway.accounts.credentials``). A presented token is checked against *every*
configured hash, in constant time each and without stopping at a match, so a refused request
costs what an accepted one does and timing tells nothing about which token nearly matched. A
missing header, a wrong token and a tenant's key or secret get the same 401.

With no token configured the admin API is off: everything under it answers 404, as if it did not
exist. Tokens are read from the running config, so a reload (SIGHUP) adds or retires them.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.accounts.credentials import verify_secret
from gateway.config.model import AdminToken
from gateway.errors import UNAUTHORIZED, error_kind
from gateway.keys import ADMIN, METRICS, RUNTIME

__all__ = ["admin_authentication", "admin_unauthorized", "token_name"]

_MAX_TOKEN_LENGTH = 512

admin_unauthorized = error_kind(401, UNAUTHORIZED, "认证失败,管理令牌无效")


def token_name(presented: str, tokens: tuple[AdminToken, ...]) -> str | None:
    """The name of the configured token ``presented`` is, checking every one of them."""
    found = None
    for token in tokens:
        if verify_secret(presented, token.token_hash) and found is None:
            found = token.name
    return found


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= _MAX_TOKEN_LENGTH:
        return ""
    return token


def admin_authentication() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        tokens = request.app[RUNTIME].current.config.admin.tokens
        if not tokens:
            raise web.HTTPNotFound()
        if request.match_info.http_exception is not None:
            # Unmatched paths fall through to the 404/405 answer: there is nothing there to protect.
            return await handler(request)
        token = _bearer(request)
        name = token_name(token, tokens) if token else None
        if name is None:
            request.app[METRICS].auth_failures.inc()
            error = admin_unauthorized()
            error.headers["WWW-Authenticate"] = 'Bearer realm="sms-edge admin"'
            raise error
        request[ADMIN] = name
        return await handler(request)

    return middleware
