"""Typed keys for everything the application and a request carry."""

from __future__ import annotations

from aiohttp import ClientSession, web

from gateway.carrier import Carrier
from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.credentials import SecretVerifier
from gateway.sending import Sender
from gateway.store import Account, Store

__all__ = [
    "ACCOUNT",
    "CARRIERS",
    "CLOCK",
    "CONFIG",
    "HTTP_SESSION",
    "PHONE_COUNT",
    "REQUEST_ID",
    "ROUTE",
    "SENDER",
    "STORE",
    "VERIFIER",
]

CONFIG = web.AppKey("config", GatewayConfig)
CLOCK = web.AppKey("clock", Clock)
STORE = web.AppKey("store", Store)
HTTP_SESSION = web.AppKey("http_session", ClientSession)
CARRIERS = web.AppKey("carriers", dict[str, Carrier])
SENDER = web.AppKey("sender", Sender)
VERIFIER = web.AppKey("verifier", SecretVerifier)

# Per-request values (set by middlewares and handlers, read by the ones outside them).
REQUEST_ID = web.RequestKey("request_id", str)
ROUTE = web.RequestKey("route", str)  # the route template, never the raw path
ACCOUNT = web.RequestKey("account", Account)
PHONE_COUNT = web.RequestKey("phone_count", int)
