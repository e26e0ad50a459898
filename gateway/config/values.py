"""Checks of one config value on its own, named by the fields of ``gateway.config.model``.

Each takes the value as read and returns what is kept, or raises ValueError saying what the value
must be; the reader adds the key path. Rules between several values are ``gateway.config.rules``.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

__all__ = ["e164_prefix", "host_port", "metrics_path", "public_url", "redis_url", "region", "time_zone"]

# Shown inside shell and PHP strings on the docs page: scheme, host, port and a plain path only.
_PUBLIC_URL = re.compile(r"https?://[A-Za-z0-9\-.]{1,253}(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~/]*)?")
_E164_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")


def public_url(url: str) -> str:
    """Where readers of the docs page reach the gateway, without a trailing slash."""
    url = url.rstrip("/")
    if url and not _PUBLIC_URL.fullmatch(url):
        raise ValueError("must be an http:// or https:// URL")
    return url


def time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return name


def redis_url(url: str) -> str:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return url


def host_port(value: Any) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:26379"`` for IPv6) as ``(host, port)``."""
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError('must be "host:port"')
    return host.strip("[]"), int(port)


def metrics_path(path: str) -> str:
    if not path.startswith("/") or path.startswith("/api/"):
        raise ValueError("must start with / and lie outside /api/")
    return path


def region(code: str) -> str:
    """An ISO 3166 region as the numbering plan knows it (``hk`` → ``HK``)."""
    code = code.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown country code {code!r}")
    return code


def e164_prefix(prefix: str) -> str:
    if not _E164_PREFIX.fullmatch(prefix):
        raise ValueError("must be an E.164 prefix: + and digits")
    return prefix
