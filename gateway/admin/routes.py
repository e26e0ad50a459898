"""The admin API's handlers (``docs/api.md``, "Admin API"): accounts, messages, the audit log.

Every change goes through the account service (``gateway.accounts.service``), as the CLI's do,
with the admin token's name as the actor. Bodies decode into ``models`` (``gateway.api.bodies``);
the account checks are the CLI's (``gateway.accounts.rules``), their refusals in the API's words
(``refusals``). Bodies hold the account's API key and, once, a new secret: nothing here is masked
but free text (names, reasons) and the records, which are kept masked.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web
from msgspec import UNSET

from gateway.accounts.rules import check_amount, check_bucket, check_name, check_reason
from gateway.accounts.service import AccountService
from gateway.admin.models import CreateAccountRequest, PatchAccountRequest, RateLimit, TopUpRequest
from gateway.admin.once import once
from gateway.admin.refusals import checked, checked_providers
from gateway.api.bodies import decode_body
from gateway.api.idempotency import idempotency_key
from gateway.api.records import public_record
from gateway.api.validation import positive_int
from gateway.config.model import BucketConfig
from gateway.errors import NOT_FOUND, error_kind, invalid
from gateway.keys import ADMIN, CLOCK, CONFIG, RUNTIME, STORE
from gateway.payload_masking import mask_payload
from gateway.phones import scrub
from gateway.responses import json_response
from gateway.store.audit import AuditEntry
from gateway.store.base import Account
from gateway.store.callbacks import OutboxEvent

__all__ = [
    "account_unknown",
    "audit_log",
    "callback_secret",
    "callbacks",
    "create",
    "list_accounts",
    "message",
    "patch",
    "replay",
    "rotate",
    "top_up",
]

Body = TypeVar("Body", CreateAccountRequest, PatchAccountRequest, TopUpRequest)

account_unknown = error_kind(404, NOT_FOUND, "账户不存在")
_message_unknown = error_kind(404, NOT_FOUND, "消息不存在")
# JSON numbers a model leaves untyped (amounts) decode as Decimal: exact, never a rounded float.
_DECODERS = {
    model: msgspec.json.Decoder(model, float_hook=Decimal)
    for model in (CreateAccountRequest, PatchAccountRequest, TopUpRequest)
}
AUDIT_PER_PAGE, MAX_AUDIT_PER_PAGE, MAX_AUDIT_PAGE = 20, 100, 1_000_000


async def _body(request: web.Request, model: type[Body]) -> Body:
    # each model's own decoder: a dict keyed by type cannot say so
    return decode_body(await request.read(), cast("msgspec.json.Decoder[Body]", _DECODERS[model]))


def _service(request: web.Request) -> AccountService:
    return AccountService(request.app[STORE], request.app[CLOCK])


def _known_providers(request: web.Request) -> dict[str, Any]:
    return request.app[RUNTIME].current.config.providers.backends


def _view(account: Account) -> dict[str, object]:
    return account.public()  # the name masked


def _ok(data: object, status: int = 200) -> web.Response:
    return json_response({"success": True, "data": data}, status=status)


async def list_accounts(request: web.Request) -> web.Response:
    accounts = await request.app[STORE].list_accounts()
    return _ok({"accounts": [_view(account) for account in accounts]})


async def create(request: web.Request) -> web.Response:
    body = await _body(request, CreateAccountRequest)
    account, secret = await _service(request).create(
        request[ADMIN],
        checked("name", check_name, body.name),
        balance_milli=checked("balance", check_amount, body.balance),
        verification_status=body.verification_status,
        ratelimit=_bucket(body.ratelimit),
        providers=checked_providers(body.providers, _known_providers(request)),
    )
    return _ok({**_view(account), "api_secret": secret}, status=201)


def _bucket(ratelimit: RateLimit | None) -> BucketConfig | None:
    return checked("ratelimit", check_bucket, ratelimit.rate, ratelimit.burst) if ratelimit else None


def _changes(body: PatchAccountRequest, known: dict[str, Any]) -> dict[str, object]:
    changes: dict[str, object] = {}
    if body.disabled is not UNSET:
        changes["disabled"] = body.disabled
    if body.verification_status is not UNSET:
        changes["verification_status"] = body.verification_status
    if body.providers is not UNSET:
        changes["providers"] = checked_providers(body.providers, known)
    if body.ratelimit is not UNSET:  # null: back to ratelimit.account
        bucket = _bucket(body.ratelimit)
        changes.update(rate=bucket.rate if bucket else None, burst=bucket.burst if bucket else None)
    # The callback fields are checked by the service, with the account's; the limits by the decoder.
    for name in ("callback_url", "callback_prefixes", "daily_limit", "monthly_limit"):
        if (value := getattr(body, name)) is not UNSET:
            changes[name] = value
    if not changes:
        raise invalid(f"至少修改 {'、'.join(PatchAccountRequest.__struct_fields__)} 之一")
    return changes


async def patch(request: web.Request) -> web.Response:
    changes = _changes(await _body(request, PatchAccountRequest), _known_providers(request))
    account = await _service(request).update(request[ADMIN], request.match_info["api_key"], changes)
    if account is None:
        raise account_unknown()
    return _ok(_view(account))


async def top_up(request: web.Request) -> web.Response:
    body = await _body(request, TopUpRequest)
    amount = checked("amount", check_amount, body.amount)
    reason = checked("reason", check_reason, body.reason)
    api_key = request.match_info["api_key"]

    async def apply() -> web.Response:  # the service refuses what is not a credit (as the CLI's)
        account = await _service(request).top_up(request[ADMIN], api_key, amount, reason)
        if account is None:
            raise account_unknown()
        return _ok(_view(account))

    key = idempotency_key(request)
    if key is None:
        return await apply()
    account = await request.app[STORE].account_by_key(api_key)
    if account is None:
        raise account_unknown()
    return await once(request, account.id, key, apply)


async def rotate(request: web.Request) -> web.Response:
    api_key = request.match_info["api_key"]
    rotated = await _service(request).rotate_secret(request[ADMIN], api_key)
    if rotated is None:
        raise account_unknown()
    return _ok({"api_key": api_key, "api_secret": rotated[1]})


async def callback_secret(request: web.Request) -> web.Response:
    found = await _service(request).set_callback_secret(request[ADMIN], request.match_info["api_key"])
    if found is None:
        raise account_unknown()
    return _ok({"callback_secret": found[1]})


_STATES = ("dead",)  # what ``callbacks`` lists: the events given up on


async def callbacks(request: web.Request) -> web.Response:
    if request.query.get("state") not in _STATES:
        raise invalid("state 须为 dead")
    page = positive_int(request.query, "page", 1, MAX_AUDIT_PAGE)
    per_page = positive_int(request.query, "per_page", AUDIT_PER_PAGE, MAX_AUDIT_PER_PAGE)
    account = await _service(request).account(request.match_info["api_key"])
    if account is None:
        raise account_unknown()
    events, total = await request.app[STORE].dead_callbacks(account.id, page, per_page)
    zone = request.app[CONFIG].server.zone
    return _ok(
        {
            "events": [_event(event, zone) for event in events],
            "total": total,
            "page": page,
            "per_page": per_page,
        }
    )


def _event(event: OutboxEvent, zone: ZoneInfo) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "message_id": event.message_id,
        "sequence": event.sequence,
        "type": event.type,
        "url": event.url,
        "attempts": event.attempts,
        "created_at": datetime.fromtimestamp(event.created_ms / 1000, zone).isoformat(timespec="seconds"),
        "last_error": scrub(event.last_error) if event.last_error is not None else None,
    }


async def replay(request: web.Request) -> web.Response:
    replayed = await _service(request).replay_callbacks(request[ADMIN], request.match_info["api_key"])
    if replayed is None:
        raise account_unknown()
    return _ok({"replayed": replayed})


async def message(request: web.Request) -> web.Response:
    found = await request.app[STORE].find_message(request.match_info["message_id"])
    if found is None:
        raise _message_unknown()
    account, record = found
    shown = msgspec.to_builtins(public_record(record, request.app[CONFIG].server.zone))
    return _ok(
        {"account": {"name": scrub(account.name), "api_key": account.api_key}, "record": mask_payload(shown)}
    )


def _entry(entry: AuditEntry, request: web.Request) -> dict[str, object]:
    at = datetime.fromtimestamp(entry.at_ms / 1000, request.app[CONFIG].server.zone)
    return {
        "id": entry.id,
        "time": at.isoformat(timespec="seconds"),
        "actor": entry.actor,
        "action": entry.action,
        "account": {"name": scrub(entry.account_name), "api_key": entry.api_key},
        "before": entry.before,
        "after": entry.after,
        "reason": scrub(entry.reason) if entry.reason is not None else None,
    }


async def audit_log(request: web.Request) -> web.Response:
    page = positive_int(request.query, "page", 1, MAX_AUDIT_PAGE)
    per_page = positive_int(request.query, "per_page", AUDIT_PER_PAGE, MAX_AUDIT_PER_PAGE)
    found = await request.app[STORE].audit_page(page, per_page)
    return _ok(
        {
            "entries": [_entry(entry, request) for entry in found.entries],
            "total": found.total,
            "page": page,
            "per_page": per_page,
        }
    )
