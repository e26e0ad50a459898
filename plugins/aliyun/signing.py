"""Alibaba Cloud request signatures, V3 (ACS3-HMAC-SHA256), the default of the current official SDK.

Pure functions: the clock and the nonce are arguments, so the result is checked against the
SDK-computed vector A2 (tests/test_aliyun_plugin.py, tests/test_signing_sdk.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "ACS3",
    "EMPTY_SHA256",
    "acs3_authorization",
    "acs3_canonical_request",
    "acs3_headers",
    "acs_date",
    "canonical_query",
    "percent_encode",
]

ACS3 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only ``A-Z a-z 0-9 - _ . ~`` stay; space is ``%20``, ``*`` is ``%2A``."""
    return quote(value.encode(), safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted ``key=value`` pairs joined by ``&``: the canonical query string V3 signs."""
    return "&".join(f"{percent_encode(key)}={percent_encode(value)}" for key, value in sorted(params.items()))


def acs_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- V3: ACS3-HMAC-SHA256 -------------------------------------------------------------------------


def acs3_canonical_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """The canonical request and the ``SignedHeaders`` list; every header given is signed."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    signed = ";".join(names)
    canonical = "\n".join(
        (method, path or "/", canonical_query(query), canonical_headers, signed, payload_hash)
    )
    return canonical, signed


def acs3_authorization(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
    access_key_id: str,
    access_key_secret: str,
) -> str:
    canonical, signed = acs3_canonical_request(method, path, query, headers, payload_hash)
    to_sign = f"{ACS3}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ACS3} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"


def acs3_headers(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    body: bytes,
    action: str,
    version: str,
    timestamp: float,
    nonce: str,
    access_key_id: str,
    access_key_secret: str,
    content_type: str | None = None,
) -> dict[str, str]:
    """The headers of one V3-signed request, ``Authorization`` included; all of them signed."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": acs_date(timestamp),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if content_type is not None:  # only with a body, as the SDK does
        headers["content-type"] = content_type
    headers["Authorization"] = acs3_authorization(
        method=method,
        path=path,
        query=query,
        headers=headers,
        payload_hash=headers["x-acs-content-sha256"],
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
    )
    return headers
