"""Where callbacks may go: the one rule every place that accepts a callback URL applies.

Tenants name their callback URLs (the account's, or a send's own), but only inside the prefixes the
platform team gave their account (admin API, CLI, config): the gateway is never aimed at an
arbitrary internal host. A URL matches a prefix when it starts with it *and* names the same host and
port, so ``https://hooks.example.com`` does not admit ``https://hooks.example.com.evil.net/`` nor
``https://hooks.example.com@evil.net/``. ``https://`` unless the prefix itself is ``http://``: a URL
starting with a prefix has the prefix's scheme.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

__all__ = [
    "MAX_PREFIXES",
    "MAX_URL_LENGTH",
    "CallbackUrlRefused",
    "check_callback_url",
    "check_prefix",
    "check_prefixes",
    "join_prefixes",
    "split_prefixes",
]

MAX_URL_LENGTH = 2048
MAX_PREFIXES = 16


class CallbackUrlRefused(ValueError):
    """A callback URL or prefix the rule refuses: ``str()`` in English (CLI, config), ``reason``
    in the API's language."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _absolute(value: object, what: str) -> str:
    """An absolute http(s) URL with a host, no user info, no whitespace; else refused."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL_LENGTH:
        raise CallbackUrlRefused(
            f"{what}: a URL of 1-{MAX_URL_LENGTH} characters", f"{what} 须为 1-{MAX_URL_LENGTH} 个字符的 URL"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises ValueError for a port that is not one
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or any(c.isspace() or not c.isprintable() for c in value)
    ):
        raise CallbackUrlRefused(
            f"{what}: must be an absolute http:// or https:// URL with a host",
            f"{what} 须为带主机名的 http:// 或 https:// 绝对地址",
        )
    return value


def check_prefix(prefix: object) -> str:
    """A prefix an account's callback URLs must start with."""
    return _absolute(prefix, "callback_prefixes")


def check_prefixes(prefixes: object) -> tuple[str, ...]:
    """The account's prefixes (a list): each an absolute http(s) URL, each once, at most
    ``MAX_PREFIXES``."""
    checked = tuple(check_prefix(p) for p in prefixes) if isinstance(prefixes, list | tuple) else None
    if checked is None or len(checked) > MAX_PREFIXES or len(set(checked)) != len(checked):
        raise CallbackUrlRefused(
            f"callback_prefixes: a list of at most {MAX_PREFIXES} URLs, each once",
            f"callback_prefixes 须为最多 {MAX_PREFIXES} 个 URL 的列表,且不能重复",
        )
    return checked


def check_callback_url(url: object, prefixes: Sequence[str]) -> str:
    """``url`` if it lies inside one of ``prefixes``; else refused, saying why."""
    checked = _absolute(url, "callback_url")
    if not prefixes:
        raise CallbackUrlRefused(
            "callback_url: the account has no callback_prefixes; the platform team sets them",
            "callback_url 不可用:账户未设置 callback_prefixes(由平台管理员设置)",
        )
    netloc = urlsplit(checked).netloc.lower()
    if not any(checked.startswith(p) and urlsplit(p).netloc.lower() == netloc for p in prefixes):
        raise CallbackUrlRefused(
            f"callback_url: must start with one of the account's callback_prefixes ({', '.join(prefixes)})",
            f"callback_url 须以账户的 callback_prefixes 之一开头({', '.join(prefixes)})",
        )
    return checked


def join_prefixes(prefixes: Iterable[str]) -> str:
    """Prefixes as the stores keep them: one text, space-separated (a checked URL holds no space)."""
    return " ".join(prefixes)


def split_prefixes(text: str | None) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()
