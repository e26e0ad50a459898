"""POST /callbacks/{provider}: a carrier's delivery-receipt push (a batch of reports per call).

Carriers do not sign their pushes, so the only guard is the backend's ``callback_token`` in the query
(constant-time, never logged; empty disables the endpoint), and a receipt reaches only records of that
backend whose carrier id and number it names: nothing an account chose. A store that is down answers
503, so the carrier pushes again. Every answer: (docs/api.md, "Delivery receipts";
docs/sending.md, "Delivery receipts").
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from aiohttp import web

from gateway.billing.charging import note_mismatch
from gateway.carriers.base import MalformedReceipts, Receipt
from gateway.errors import FORBIDDEN, HTTP_ERRORS, error_kind, invalid, store_unavailable
from gateway.keys import CLOCK, METRICS, RUNTIME, STORE
from gateway.log_throttle import LogThrottle
from gateway.metrics import Metrics
from gateway.phones import scrub
from gateway.responses import json_response
from gateway.sending.sender import Sender
from gateway.store.base import Store, StoreUnavailable
from gateway.store.records import ReceiptUpdate

__all__ = ["apply_carrier_receipts", "carrier_receipts"]

log = logging.getLogger("smsedge.receipts")

ERROR_MAX = 500  # characters of "code: description" kept on a record
_token_refusals = LogThrottle(60.0)  # anyone can send wrong tokens: one line a minute at most


# The same answer as a path that does not exist: a disabled endpoint reveals nothing more.
_not_found = error_kind(404, *HTTP_ERRORS[404])
_forbidden = error_kind(403, FORBIDDEN, "权限不足:回调令牌无效")


def _token_matches(offered: str, expected: str) -> bool:
    # Digests of equal length, so neither the content nor the length of the token leaks by timing.
    return hmac.compare_digest(
        hashlib.sha256(offered.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def _update(sender: Sender, receipt: Receipt) -> ReceiptUpdate:
    error = None
    if not receipt.delivered:
        text = f"{receipt.code}: {receipt.description}" if receipt.description else receipt.code
        error = scrub(text)[:ERROR_MAX]
    return ReceiptUpdate(
        receipt.carrier_id, sender.phone_hash(receipt.e164), receipt.delivered, error, receipt.segments
    )


async def apply_carrier_receipts(
    store: Store, sender: Sender, metrics: Metrics, provider: str, receipts: list[Receipt], now_ms: int
) -> int:
    """Apply a carrier's receipts, pushed or pulled; how many records they finalised. A count that
    re-priced a record differently from the gateway's is a mismatch (``gateway.billing.charging``).
    Raises StoreUnavailable."""
    applied = await store.apply_receipts(provider, [_update(sender, r) for r in receipts], now_ms)
    for ours, theirs in applied.recounted:
        note_mismatch(metrics, provider, None, ours, theirs)
    return applied.changed


async def carrier_receipts(request: web.Request) -> web.Response:
    name = request.match_info["provider"]
    runtime = request.app[RUNTIME].current
    backend = runtime.config.providers.backends.get(name)
    if backend is None or not backend.callback_token:
        raise _not_found()
    if not _token_matches(request.query.get("token", ""), backend.callback_token):
        if (left_out := _token_refusals.due()) is not None:
            log.warning(
                "receipt push for %s refused: wrong or missing token (%d more such refusals "
                "not logged since the last line)",
                name,
                left_out,
            )
        raise _forbidden()
    carrier = runtime.carriers[name]
    try:
        receipts = carrier.parse_receipts(await request.read())
    except MalformedReceipts as exc:
        log.warning("receipt push for %s refused: %s", name, exc)
        raise invalid("无法解析回执") from None
    if receipts is None:
        raise _not_found()
    now_ms = int(request.app[CLOCK]() * 1000)
    try:
        changed = await apply_carrier_receipts(
            request.app[STORE], runtime.sender, request.app[METRICS], name, receipts, now_ms
        )
    except StoreUnavailable:
        log.exception("store unavailable: %d receipts from %s not applied", len(receipts), name)
        raise store_unavailable() from None
    log.info("receipts from %s: %d reports, %d records finalised", name, len(receipts), changed)
    status, reply = carrier.receipt_reply()
    return json_response(reply, status=status)
