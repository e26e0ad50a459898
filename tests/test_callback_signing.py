"""Callback signatures (docs/callbacks.md, "Verifying a callback"): what ``sign`` writes, checked
against a vector computed by openssl, and what ``verify`` accepts and refuses, case by case."""

from __future__ import annotations

import subprocess

import pytest

from gateway.callbacks.signing import (
    HEADER_EVENT_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    TOLERANCE_SECONDS,
    sign,
    verify,
)

SECRET = "whsec_test"
TIMESTAMP = 1_700_000_000
BODY = b'{"event_id":"e1"}'
# printf '1700000000.{"event_id":"e1"}' | openssl dgst -sha256 -hmac whsec_test
VECTOR = "v1=8a9b910184f1d9ed3590e106c991e230a182f3b9356c7c1ed91c013d17ed0775"


def _openssl_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The same signature made by another implementation: openssl's HMAC over the signed text."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret],
        input=f"{timestamp}.".encode() + body,
        capture_output=True,
        check=True,
    )
    return "v1=" + digest.stdout.decode().split("=")[-1].strip()


def test_the_header_names_and_the_tolerance_are_the_contract():
    assert (HEADER_TIMESTAMP, HEADER_SIGNATURE, HEADER_EVENT_ID, TOLERANCE_SECONDS) == (
        "SmsEdge-Timestamp",
        "SmsEdge-Signature",
        "SmsEdge-Event-Id",
        300,
    )


def test_sign_matches_the_fixed_vector():
    assert sign(SECRET, TIMESTAMP, BODY) == VECTOR


@pytest.mark.parametrize(
    ("secret", "timestamp", "body"),
    [
        (SECRET, TIMESTAMP, BODY),
        ("another secret, with spaces", 1, b""),
        ("密钥-non-ascii", 4_102_444_800, '{"phone":"138****8000","error_message":"号码无效"}'.encode()),
        ("k", TIMESTAMP, bytes(range(256))),  # any bytes: the signature covers the raw body
    ],
)
def test_sign_agrees_with_openssl(secret, timestamp, body):
    assert sign(secret, timestamp, body) == _openssl_signature(secret, timestamp, body)


OTHER = sign(SECRET, TIMESTAMP, b"another body")
FORGED = "v1=" + "0" * 64
AS_SIGNED = {
    "secret": SECRET,
    "timestamp": str(TIMESTAMP),
    "signature": VECTOR,
    "body": BODY,
    "now": TIMESTAMP,
}


def _case(name: str, accepted: bool, **changed: object) -> object:
    """One row: the vector's request with ``changed`` put in, and whether ``verify`` accepts it."""
    return pytest.param({**AS_SIGNED, **changed}, accepted, id=name)


@pytest.mark.parametrize(
    ("request_", "accepted"),
    [
        _case("as signed", True),
        _case("a little later", True, now=TIMESTAMP + 42.5),
        _case("at the tolerance", True, now=TIMESTAMP + 300),
        _case("stale", False, now=TIMESTAMP + 301),
        _case("much too old", False, now=TIMESTAMP + 86_400),
        _case("clock a little behind", True, now=TIMESTAMP - 300),
        _case("from the future", False, now=TIMESTAMP - 301),
        _case("tampered body", False, body=BODY.replace(b"e1", b"e2")),
        _case("body with a trailing newline", False, body=BODY + b"\n"),
        _case("wrong secret", False, secret="whsec_other"),
        _case("timestamp changed", False, timestamp=str(TIMESTAMP + 1)),
        _case("forged", False, signature=FORGED),
        _case("upper-case hex", False, signature="v1=" + VECTOR.removeprefix("v1=").upper()),
        _case("no scheme", False, signature=VECTOR.removeprefix("v1=")),
        _case("another scheme", False, signature=VECTOR.replace("v1=", "v0=")),
        _case("several, the right one last", True, signature=f"{OTHER},{VECTOR}"),
        _case("several, the right one first", True, signature=f"{VECTOR}, {FORGED}"),
        _case("several with spaces", True, signature=f" {FORGED} , {VECTOR} "),
        _case("several, none right", False, signature=f"{OTHER},{FORGED}"),
        _case("other schemes beside", True, signature=f"v0=abc,{VECTOR}"),
        _case("no signature", False, signature=None),
        _case("empty signature", False, signature=""),
        _case("non-ASCII signature", False, signature="v1=签名"),
        _case("no timestamp", False, timestamp=None),
        _case("empty timestamp", False, timestamp=""),
        _case("timestamp not a number", False, timestamp="soon"),
        _case("timestamp with a sign", False, timestamp=f"+{TIMESTAMP}"),
        _case("timestamp in other digits", False, timestamp="١٧٠٠٠٠٠٠٠٠"),
        _case("timestamp with a fraction", False, timestamp=f"{TIMESTAMP}.0"),
    ],
)
def test_verify(request_, accepted):
    r = request_
    assert verify(r["secret"], r["timestamp"], r["signature"], r["body"], r["now"]) is accepted


def test_verify_accepts_what_sign_writes_now_and_a_rotated_secrets_pair():
    """During a rotation a receiver holds both secrets; the gateway signs with the new one."""
    now = 1_800_000_000
    body = b'{"event_id":"e2","type":"delivered"}'
    header = sign("new secret", now, body)
    assert [verify(secret, str(now), header, body, now) for secret in ("new secret", "old secret")] == [
        True,
        False,
    ]
