"""Idempotency-Key on the sending routes: a retried request answers what the first one did.

Within 24 h the same key from the same account replays the first response without sending again,
across every gateway sharing the store; another body is 409. A response is kept once something reached
the carrier; a request refused before anything was sent releases its key, so the corrected retry goes
through. A claim is a lease of :data:`LEASE_MS`, so a gateway killed mid-send holds the key only that
long. What is kept, and how a retry takes over a dead attempt: (docs/api.md, "Idempotency-Key";
docs/sending.md, "Idempotency keys").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from typing import cast

import orjson
from aiohttp import web
from msgspec.structs import replace

from gateway.errors import IDEMPOTENCY_CONFLICT, ApiError, error_kind, internal, invalid, store_unavailable
from gateway.ids import new_hex_id
from gateway.keys import ACCOUNT, CLOCK, CONFIG, REQUEST_ID, ROUTE_TEMPLATE, RUNTIME, STORE, TOKENS
from gateway.payload_masking import mask_payload
from gateway.phones import scrub
from gateway.responses import JsonResponse, error_response
from gateway.sending.model import Delivery, SendInput
from gateway.sending.recovery import previous_deliveries
from gateway.store.base import IdempotencyClaim, StoreUnavailable

__all__ = [
    "HEADER",
    "KEY_PATTERN",
    "LEASE_MS",
    "MAX_KEY_LENGTH",
    "POLL_SECONDS",
    "TTL_MS",
    "WAIT_SECONDS",
    "claim_key",
    "fingerprint_of",
    "idempotency_conflict",
    "idempotency_in_progress",
    "idempotency_key",
    "idempotent_send",
    "replayed",
    "stored_key",
]

log = logging.getLogger("smsedge.idempotency")

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7E]+$"  # visible ASCII: no spaces, controls or anything beyond
MAX_KEY_LENGTH = 128
TTL_MS = 24 * 3600 * 1000
POLL_SECONDS = 0.05  # how often a request waits on the first one holding its key
WAIT_SECONDS = 30.0  # longer than any send (carrier timeouts and failover included)
#: An unfinished claim this old is presumed dead and may be taken over: well beyond WAIT_SECONDS
#: and any send (each carrier's timeout along the whole failover chain).
LEASE_MS = 120_000
_KEY = re.compile(KEY_PATTERN)

idempotency_conflict = error_kind(
    409, IDEMPOTENCY_CONFLICT, "请求冲突:该 Idempotency-Key 已用于不同的请求内容"
)
idempotency_in_progress = error_kind(
    409, IDEMPOTENCY_CONFLICT, "请求冲突:使用该 Idempotency-Key 的请求仍在处理中,请稍后重试"
)


Check = Callable[[web.Request], Awaitable[SendInput]]
Reply = Callable[[web.Request, list[Delivery]], web.Response]


def idempotent_send(check: Check, reply: Reply) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A sending route: ``check`` the request, send, ``reply`` — under its Idempotency-Key, if any.

    The three steps tell the key what happened: a failure in ``check`` (a refusal, a bug, a
    cancellation) and an ``ApiError`` from the sender (it refuses only before any carrier is
    called) mean nothing was sent, so the key is given back; anything else that escapes the sender
    leaves the outcome unknown, so the key stays claimed rather than risk sending twice.
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        key = idempotency_key(request)
        if key is None:
            return reply(request, await _send(request, await check(request)))
        return await _claimed(request, check, reply, stored_key(request.app[CONFIG].server.secret_key, key))

    return handler


async def _send(request: web.Request, send_input: SendInput) -> list[Delivery]:
    return await request.app[RUNTIME].current.sender.send(request[ACCOUNT], send_input, request.get(TOKENS))


def fingerprint_of(route: str, body: bytes) -> str:
    """What a key remembers of its request: the same key with another one is a conflict."""
    return hashlib.sha256(route.encode() + b"\n" + body).hexdigest()


def stored_key(secret_key: str, key: str) -> str:
    """What the store keeps of an Idempotency-Key: its HMAC-SHA256 under ``server.secret_key``, as
    for numbers, since a caller's key may hold one (``order-13912345678``). Without a secret key
    the HMAC's key is empty: a random one would lose every claim at a restart."""
    return hmac.new(secret_key.encode(), key.encode(), hashlib.sha256).hexdigest()


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key, None without one; 400 for a malformed one."""
    values = request.headers.getall(HEADER, [])
    if not values:
        return None
    if len(values) > 1 or len(values[0]) > MAX_KEY_LENGTH or not _KEY.fullmatch(values[0]):
        raise invalid(f"{HEADER} 须为 1–{MAX_KEY_LENGTH} 个可见 ASCII 字符")
    return values[0]


def replayed(status: int, body: bytes) -> web.Response:
    """The kept answer of the request that first used the key."""
    return web.Response(
        body=body,
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers={"Idempotent-Replayed": "true"},
    )


async def claim_key(request: web.Request, account_id: int, key: str, token: str) -> IdempotencyClaim:
    """Claim ``key`` (a :func:`stored_key`) for ``token`` with this request's body, waiting while a
    request with the same body holds it: the claim, ``new``, ``stale`` or ``replay``. 409 when the
    key holds another body, or its holder has not finished within :data:`WAIT_SECONDS`."""
    store, clock = request.app[STORE], request.app[CLOCK]
    fingerprint = fingerprint_of(request[ROUTE_TEMPLATE], await request.read())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        claim = await store.claim_idempotency(
            account_id, key, fingerprint, token, int(clock() * 1000), TTL_MS, LEASE_MS
        )
        if claim.state == "conflict":
            raise idempotency_conflict()
        if claim.state != "pending":
            return claim
        if loop.time() >= deadline:
            raise idempotency_in_progress()
        await asyncio.sleep(POLL_SECONDS)


async def _claimed(request: web.Request, check: Check, reply: Reply, key: str) -> web.StreamResponse:
    """Claim the key and run the handler, or wait for the request holding it and replay its answer."""
    token = new_hex_id()
    try:
        claim = await claim_key(request, request[ACCOUNT].id, key, token)
    except StoreUnavailable as exc:
        log.warning("store unavailable, idempotency key not claimed, nothing sent: %s", exc)
        raise store_unavailable() from None
    if claim.state == "replay":
        return replayed(claim.status, claim.body)
    if claim.state == "stale":
        return await _take_over(request, check, reply, (key, token), claim.previous_token)
    return await _first(request, check, reply, (key, token))


async def _checked(request: web.Request, check: Check, claim: tuple[str, str]) -> SendInput:
    try:
        return await check(request)
    except BaseException:  # refused, failed or cancelled before sending: the retry may use the key
        await asyncio.shield(_release(request, *claim))
        raise


async def _first(request: web.Request, check: Check, reply: Reply, claim: tuple[str, str]) -> web.Response:
    """Run the request that holds the key; keep its answer if it sent, else give the key back."""
    send_input = await _checked(request, check, claim)
    return await _send_held(request, reply, claim, replace(send_input, id_seed=claim[1]))


async def _take_over(
    request: web.Request, check: Check, reply: Reply, claim: tuple[str, str], seed: str
) -> web.Response:
    """Finish what the attempt that held the key past its lease left: send, or answer its records."""
    send_input = replace(await _checked(request, check, claim), id_seed=seed)
    try:
        deliveries = await previous_deliveries(
            request.app[STORE],
            request[ACCOUNT].id,
            send_input,
            request.app[CLOCK](),
            request.app[CONFIG].server.zone,
        )
    except StoreUnavailable as exc:
        # The key stays ours (and its seed): a retry after the lease tries again, never sends blind.
        log.warning("store unavailable, a stale idempotency key not recovered: %s", exc)
        raise store_unavailable() from None
    if deliveries is None:  # the dead attempt reserved nothing: nothing was sent
        return await _send_held(request, reply, claim, send_input)
    response = reply(request, deliveries)
    await _save(request, *claim, response)
    response.headers["Idempotent-Replayed"] = "true"
    return response


async def _send_held(
    request: web.Request, reply: Reply, claim: tuple[str, str], send_input: SendInput
) -> web.Response:
    try:
        deliveries = await _send(request, send_input)
    except ApiError:
        await _release(request, *claim)
        raise
    except Exception:  # a cancellation also leaves the claim, unanswered: 409 until its lease ends
        log.exception("unhandled error while sending in %s", request[ROUTE_TEMPLATE])
        response: web.Response = error_response(internal(), request[REQUEST_ID])
        await _save(request, *claim, response)
        return response
    response = reply(request, deliveries)
    if any(delivery.message_id for delivery in deliveries):
        await _save(request, *claim, response)
    else:
        await _release(request, *claim)
    return response


async def _save(request: web.Request, key: str, token: str, response: web.Response) -> None:
    # Masked here, not by the masking middleware outside: what is kept must never hold a number.
    if isinstance(response, JsonResponse):
        response.set_payload(mask_payload(response.payload))
        body = orjson.dumps(response.payload)
    else:
        raw = cast("bytes | None", response.body)  # our answers are built from bytes, never a Payload
        body = scrub(bytes(raw or b"").decode("utf-8", errors="replace")).encode()
    try:
        await request.app[STORE].finish_idempotency(request[ACCOUNT].id, key, token, response.status, body)
    except StoreUnavailable:
        # The send happened and its answer still goes out; a retry with this key will get 409.
        log.exception("store unavailable: response of an idempotent send not kept")


async def _release(request: web.Request, key: str, token: str) -> None:
    try:
        await request.app[STORE].release_idempotency(request[ACCOUNT].id, key, token)
    except StoreUnavailable:
        log.exception("store unavailable: idempotency key not released")
