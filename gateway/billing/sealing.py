"""A number kept sealed while its record waits for a receipt: the status pull must name it.

Records keep only a masked number and a keyed hash, which no carrier can be asked about; a record
that may need a status pull (``gateway.billing.pull``) also keeps its number encrypted (AES-GCM,
a key derived from ``server.secret_key``, the record's message id as associated data, so a sealed
number cannot be moved to another record). It is dropped once the record is final or the gateway
stops asking. A changed ``server.secret_key`` leaves older seals unopenable: those records are
not asked about, and are marked when they are given up on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer"]

_PURPOSE = b"smsedge: numbers awaiting a receipt, v1"
_NONCE_BYTES = 12


class Sealer:
    def __init__(self, secret_key: str) -> None:
        key = hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()
        self._aead = AESGCM(key)

    def seal(self, e164: str, message_id: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, e164.encode(), message_id.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str, message_id: str) -> str | None:
        """The number; None when it was sealed under another key or for another record."""
        try:
            raw = base64.urlsafe_b64decode(sealed)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], message_id.encode()).decode()
        except (InvalidTag, ValueError):
            return None
