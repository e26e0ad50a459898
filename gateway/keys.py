"""Typed keys for everything the application and a request carry."""

from __future__ import annotations

from aiohttp import ClientSession, web

from gateway.clock import Clock
from gateway.config.model import GatewayConfig
from gateway.credentials import SecretVerifier
from gateway.metrics import Metrics
from gateway.ratelimit import Tokens
from gateway.ratelimit.guard import GuardedLimiter
from gateway.redis_client import RedisSource
from gateway.runtime import RuntimeSlot
from gateway.sending.route_tally import RouteTally
from gateway.sending.stats import CarrierStats
from gateway.store.base import Account, Store
from gateway.timeline import Timeline

__all__ = [
    "ACCOUNT",
    "ADMIN",
    "CARRIER_STATS",
    "CLOCK",
    "CONFIG",
    "HTTP_SESSION",
    "LIMITER",
    "METRICS",
    "PHONE_COUNT",
    "RATE_LIMIT_HEADERS",
    "REDIS",
    "REQUEST_ID",
    "ROUTE",
    "ROUTE_TALLY",
    "RUNTIME",
    "STORE",
    "TIMELINE",
    "TOKENS",
    "VERIFIER",
]

CONFIG = web.AppKey("config", GatewayConfig)
CLOCK = web.AppKey[Clock]("clock")  # a Callable: not a class to pass as the type
STORE = web.AppKey("store", Store)
HTTP_SESSION = web.AppKey("http_session", ClientSession)
CARRIER_STATS = web.AppKey("carrier_stats", CarrierStats)  # recent calls, for /status
ROUTE_TALLY = web.AppKey("route_tally", RouteTally)  # numbers per route, for /status and metrics
# Carriers, breakers and sender of the current config: read once per request (gateway.runtime).
RUNTIME = web.AppKey("runtime", RuntimeSlot)
VERIFIER = web.AppKey("verifier", SecretVerifier)
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", GuardedLimiter)
TIMELINE = web.AppKey("timeline", Timeline)  # this process's last 30 minutes, for /status
REDIS = web.AppKey("redis", RedisSource)  # the one Redis client, made if some part uses Redis

# Per-request values (set by middlewares and handlers, read by the ones outside them).
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE = web.RequestKey("route", str)  # the route template, never the raw path
ACCOUNT = web.RequestKey("account", Account)
ADMIN = web.RequestKey("admin", str)  # the admin token's name, on the admin API
PHONE_COUNT = web.RequestKey("phone_count", int)
TOKENS = web.RequestKey("tokens", Tokens)  # what the request costs its account's bucket
RATE_LIMIT_HEADERS = web.RequestKey("rate_limit_headers", dict)  # added to the final response, errors too
