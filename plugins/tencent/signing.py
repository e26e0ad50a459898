"""TC3-HMAC-SHA256, the request signature of Tencent Cloud API 3.0, as pure functions.

Kept apart from the plugin, with the clock passed in, so the algorithm can be checked byte for
byte against the vector computed with the official SDK (``carriers.md`` T1) without a network.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

__all__ = [
    "ALGORITHM",
    "SIGNED_HEADERS",
    "authorization",
    "canonical_request",
    "request_headers",
    "sign",
    "string_to_sign",
    "utc_date",
]

ALGORITHM = "TC3-HMAC-SHA256"
SIGNED_HEADERS = "content-type;host"
CONTENT_TYPE = "application/json"  # the SDK's exact value; the signed and sent bytes must agree


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """The credential-scope date: the UTC day of ``X-TC-Timestamp``, not the local one."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def canonical_request(*, method: str, uri: str, query: str, content_type: str, host: str, body: bytes) -> str:
    headers = f"content-type:{content_type}\nhost:{host}\n"
    return "\n".join((method, uri, query, headers, SIGNED_HEADERS, _sha256_hex(body)))


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    scope = f"{utc_date(timestamp)}/{service}/tc3_request"
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{_sha256_hex(canonical.encode())}"


def sign(secret_key: str, date: str, service: str, to_sign: str) -> str:
    """Derive the day's signing key from the secret, then sign; as ``Sign.sign_tc3``."""
    key = _hmac(("TC3" + secret_key).encode(), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    timestamp: int,
    host: str,
    body: bytes,
    service: str = "sms",
    content_type: str = CONTENT_TYPE,
    method: str = "POST",
    uri: str = "/",
    query: str = "",
) -> str:
    """The ``Authorization`` header value for one request."""
    canonical = canonical_request(
        method=method, uri=uri, query=query, content_type=content_type, host=host, body=body
    )
    date = utc_date(timestamp)
    signature = sign(secret_key, date, service, string_to_sign(timestamp, service, canonical))
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )


def request_headers(
    *,
    action: str,
    version: str,
    region: str,
    secret_id: str,
    secret_key: str,
    host: str,
    body: bytes,
    timestamp: int,
) -> dict[str, str]:
    """Every header the official SDK sends with a TC3-signed JSON POST."""
    return {
        "Content-Type": CONTENT_TYPE,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": region,
        "Authorization": authorization(
            secret_id=secret_id, secret_key=secret_key, timestamp=timestamp, host=host, body=body
        ),
    }
