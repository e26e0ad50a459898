"""API keys and secrets: generation, hashing at rest and constant-time verification.

An API secret is a 192-bit random token, not a password a person chose, so a slow KDF buys nothing
against guessing and costs every refused request ~70 ms of CPU. Secrets are kept as HMAC-SHA256
with a per-account random salt (``hmac-sha256$salt$digest``): a microsecond to check, compared in
constant time, and an unknown key is checked against a decoy so it costs the same as a wrong secret.

Hashes written before (``scrypt$…``) still verify, one at a time in a worker thread so a flood of
guesses can take at most one core; the first successful login replaces them (see ``needs_upgrade``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

__all__ = ["SecretVerifier", "hash_secret", "needs_upgrade", "new_api_key", "new_api_secret", "verify_secret"]

_SCHEME = "hmac-sha256"
_LEGACY_SCHEME = "scrypt"


def new_api_key() -> str:
    return "sk_" + secrets.token_hex(12)


def new_api_secret() -> str:
    return secrets.token_urlsafe(24)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _digest(secret: str, salt: bytes) -> bytes:
    return hmac.digest(salt, secret.encode(), hashlib.sha256)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``hmac-sha256$salt$digest``, all that is kept of a secret."""
    salt = salt or secrets.token_bytes(16)
    return f"{_SCHEME}${_b64(salt)}${_b64(_digest(secret, salt))}"


def needs_upgrade(stored: str) -> bool:
    """True for a hash in an older scheme, to be replaced on the next successful login."""
    return not stored.startswith(_SCHEME + "$")


def _verify_fast(secret: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = _digest(secret, base64.b64decode(salt))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _verify_scrypt(secret: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def verify_secret(secret: str, stored: str) -> bool:
    """Check ``secret`` against a stored hash of either scheme (blocking for a legacy one)."""
    if stored.startswith(_LEGACY_SCHEME + "$"):
        return _verify_scrypt(secret, stored)
    return stored.startswith(_SCHEME + "$") and _verify_fast(secret, stored)


class SecretVerifier:
    """Verify presented secrets on the event loop; legacy hashes one at a time off it."""

    def __init__(self) -> None:
        self._decoy = hash_secret(new_api_secret())
        self._legacy_slot = asyncio.Semaphore(1)

    async def verify(self, secret: str, stored: str | None) -> bool:
        """True when ``secret`` matches ``stored``; an unknown key (None) costs the same as a miss."""
        if stored is None:
            _verify_fast(secret, self._decoy)
            return False
        if not needs_upgrade(stored):
            return _verify_fast(secret, stored)
        async with self._legacy_slot:
            return await asyncio.to_thread(verify_secret, secret, stored)
