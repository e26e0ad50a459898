"""Typed keys for everything the application and a request carry."""

from __future__ import annotations

from aiohttp import ClientSession, web

from gateway.accounts.credentials import SecretVerifier
from gateway.clock import Clock
from gateway.config.model import GatewayConfig
from gateway.metrics import Metrics
from gateway.ratelimit import Tokens
from gateway.ratelimit.guard import GuardedLimiter
from gateway.redis.client import RedisSource
from gateway.runtime import RuntimeSlot
from gateway.status.view import StatusView
from gateway.store.base import Account, Store

__all__ = [
    "ACCOUNT",
    "ADMIN",
    "CLOCK",
    "CONFIG",
    "HTTP_SESSION",
    "LIMITER",
    "METRICS",
    "PHONE_COUNT",
    "RATE_LIMIT_HEADERS",
    "REDIS",
    "REQUEST_ID",
    "ROUTE_TEMPLATE",
    "RUNTIME",
    "STATUS",
    "STORE",
    "TOKENS",
    "VERIFIER",
]

CONFIG = web.AppKey("config", GatewayConfig)
CLOCK = web.AppKey[Clock]("clock")  # a Callable: not a class to pass as the type
STORE = web.AppKey("store", Store)
HTTP_SESSION = web.AppKey("http_session", ClientSession)
# Carriers, breakers and sender of the current config: read once per request (gateway.runtime).
RUNTIME = web.AppKey("runtime", RuntimeSlot)
VERIFIER = web.AppKey("verifier", SecretVerifier)
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", GuardedLimiter)
STATUS = web.AppKey("status", StatusView)  # what /status shows of this process, kept across reloads
REDIS = web.AppKey("redis", RedisSource)  # the one Redis client, made if some part uses Redis

# Per-request values (set by middlewares and handlers, read by the ones outside them).
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE_TEMPLATE = web.RequestKey("route_template", str)  # never the raw path
ACCOUNT = web.RequestKey("account", Account)
ADMIN = web.RequestKey("admin", str)  # the admin token's name, on the admin API
PHONE_COUNT = web.RequestKey("phone_count", int)
TOKENS = web.RequestKey("tokens", Tokens)  # what the request costs its account's bucket
RATE_LIMIT_HEADERS = web.RequestKey("rate_limit_headers", dict)  # added to the final response, errors too
