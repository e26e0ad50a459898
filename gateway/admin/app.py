"""The admin API: an aiohttp sub-app the root app mounts at /admin/api, with its own middlewares.

Its chain runs inside the root app's (request id and error envelope, metrics, body limit), so its
refusals are enveloped, counted and logged like any other answer. Outermost first:

1. ``admin_authentication`` — a bearer token of ``admin.tokens`` (``auth``); none configured: 404.
2. ``service_errors`` — what the account service and the store refuse, as API errors: a bad value
   400 ``INVALID_PARAMS``, a taken name 409 ``ACCOUNT_EXISTS``, the store down 503 ``UNAVAILABLE``.

Answers carry the API's headers (``nosniff``, ``no-store``): they hold keys and, once, secrets.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.accounts.rules import Invalid
from gateway.admin import routes
from gateway.admin.auth import admin_authentication
from gateway.admin.refusals import refusal
from gateway.admin.usage import usage
from gateway.api import api_headers, share_state
from gateway.callbacks.urls import CallbackUrlRefused
from gateway.errors import ACCOUNT_EXISTS, error_kind, invalid, store_unavailable
from gateway.store.base import AccountExists, StoreUnavailable

__all__ = ["PREFIX", "create_admin_app"]

log = logging.getLogger("smsedge.admin")
PREFIX = "/admin/api"
_account_exists = error_kind(409, ACCOUNT_EXISTS, "账户名或 API Key 已存在")


def service_errors() -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Invalid as exc:  # a handler names the fields it checks; this one the service did
            raise invalid(refusal(exc)) from None
        except CallbackUrlRefused as exc:  # its reason is the API's words already
            raise invalid(exc.reason) from None
        except AccountExists:
            raise _account_exists() from None
        except StoreUnavailable as exc:  # one line, no traceback: an outage answers many of these
            log.warning("store unavailable on the admin API: %s", exc)
            raise store_unavailable() from None

    return middleware


def create_admin_app(parent: web.Application) -> web.Application:
    """The /admin/api sub-app, sharing ``parent``'s state."""
    admin = web.Application(middlewares=[admin_authentication(), service_errors()])
    add = admin.router
    add.add_get("/accounts", routes.list_accounts, name="admin_accounts", allow_head=False)
    add.add_post("/accounts", routes.create, name="admin_create")
    add.add_patch("/accounts/{api_key}", routes.patch, name="admin_patch")
    add.add_post("/accounts/{api_key}/topup", routes.top_up, name="admin_topup")
    add.add_post("/accounts/{api_key}/rotate-secret", routes.rotate, name="admin_rotate")
    add.add_post("/accounts/{api_key}/callback-secret", routes.callback_secret, name="admin_callback_secret")
    add.add_get("/accounts/{api_key}/callbacks", routes.callbacks, name="admin_callbacks", allow_head=False)
    add.add_post("/accounts/{api_key}/callbacks/replay", routes.replay, name="admin_replay")
    add.add_get("/messages/{message_id}", routes.message, name="admin_message", allow_head=False)
    add.add_get("/audit", routes.audit_log, name="admin_audit", allow_head=False)
    add.add_get("/usage", usage, name="admin_usage", allow_head=False)
    admin.on_startup.append(share_state(parent))
    admin.on_response_prepare.append(api_headers)
    return admin
