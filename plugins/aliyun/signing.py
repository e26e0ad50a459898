"""Alibaba Cloud request signatures, V3 (ACS3-HMAC-SHA256) and V1 (RPC HMAC-SHA1): pure functions.

The plugin signs with V3, the default of the current official SDK; V1 is kept because it is the
signature most existing Dysmsapi integrations use and the fake upstream accepts both. The clock
and the nonce are arguments, so both are checked against the SDK-computed vectors A1 and A2.
"""

from __future__ import annotations

import base64
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
    "rpc_signature",
    "rpc_string_to_sign",
]

ACS3 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only ``A-Z a-z 0-9 - _ . ~`` stay; space is ``%20``, ``*`` is ``%2A``."""
    return quote(value.encode(), safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Sorted ``key=value`` pairs joined by ``&``: the query string both versions sign."""
    return "&".join(
        f"{percent_encode(key)}={percent_encode(value)}" for key, value in sorted(params.items())
    )


def acs_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- V1: RPC, HMAC-SHA1 ---------------------------------------------------------------------------


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&<encoded canonical query>``; every parameter but ``Signature`` is signed."""
    signed = {key: value for key, value in params.items() if key != "Signature"}
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(signed))}"


def rpc_signature(params: Mapping[str, str], method: str, secret: str) -> str:
    """Base64 HMAC-SHA1 keyed with ``secret + "&"`` (the ``&`` is part of the V1 key)."""
    digest = hmac.new(
        (secret + "&").encode(), rpc_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


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
    # Unlike V1, the key is the bare secret: no trailing "&".
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
