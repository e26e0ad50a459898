"""Idempotency-Key on the admin API's top-up: the same key, once.

An operator's retried top-up must not credit twice, so it claims its key as the sending routes do
(``gateway.api.idempotency.claim_key``): once across every process and restart, a replay of the
first answer, 409 ``IDEMPOTENCY_CONFLICT`` for another body. Only an answer that changed something
is kept.
A claim whose holder died mid-way is refused with 409 rather than risk crediting twice.
Scope, lifetime and the rest: (docs/sending.md, "On the admin API's top-up").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from gateway.api.idempotency import claim_key, replayed, stored_key
from gateway.errors import IDEMPOTENCY_CONFLICT, error_kind
from gateway.ids import new_hex_id
from gateway.keys import ADMIN, CONFIG, STORE
from gateway.store.base import StoreUnavailable

__all__ = ["once"]

log = logging.getLogger("smsedge.admin")

_outcome_unknown = error_kind(
    409,
    IDEMPOTENCY_CONFLICT,
    "请求冲突:使用该 Idempotency-Key 的上一次请求未完成,结果未知;请查看审计日志后使用新的 Key 重试",
)


async def once(
    request: web.Request, account_id: int, key: str, run: Callable[[], Awaitable[web.Response]]
) -> web.Response:
    """``run()``'s answer, or the kept answer of the first request that used ``key``."""
    store = request.app[STORE]
    scoped = stored_key(request.app[CONFIG].server.secret_key, f"admin {request[ADMIN]} {key}")
    token = new_hex_id()
    claim = await claim_key(request, account_id, scoped, token)
    if claim.state == "replay":
        return replayed(claim.status, claim.body)
    if claim.state == "stale":
        raise _outcome_unknown()
    try:
        response = await run()
    except BaseException:  # nothing changed: the key may be used again
        await asyncio.shield(store.release_idempotency(account_id, scoped, token))
        raise
    try:
        body = cast("bytes | bytearray", response.body)  # the admin API answers with bytes (json_response)
        await store.finish_idempotency(account_id, scoped, token, response.status, bytes(body))
    except StoreUnavailable:  # applied all the same; a retry with the key gets 409, never a second one
        log.exception("store unavailable: the answer of an idempotent top-up not kept")
    return response
