"""Hostile input against a real gateway process: every answer a 4xx JSON envelope, none a 500.

No timing assertions: each request has a 2 s client timeout, so a slow answer fails as a timeout.
Raw sockets where the HTTP client would refuse to send the bytes (NUL in headers, bad UTF-8 in
the request line, 100 KB headers).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import DEMO_HEADERS, default_document, without_limits
from tests.gateway_process import GatewayProcess

TIMEOUT = 2.0
MAX_BODY = 1_000_000  # big enough for 100k '[' to reach the JSON parser
SEND = "/api/sms/send"
BATCH = "/api/sms/batch-send"
RECORDS = "/api/sms/records"
JSON_HEADERS = {**DEMO_HEADERS, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory):
    directory: Path = tmp_path_factory.mktemp("hostile")
    document = without_limits(default_document())
    document["store"]["path"] = str(directory / "hostile.db")
    document["server"]["max_body_bytes"] = MAX_BODY
    document["accounts"][0]["balance"] = 100_000
    process = GatewayProcess(document, directory, name="hostile")
    yield process
    process.stop()


def assert_envelope(
    response: requests.Response, status: int | None = None, code: str | None = None
) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["success"] is False
    assert body["code"] == (code or body["code"]) and body["code"].isupper()
    assert body["message"] and body["request_id"] == response.headers["X-Request-ID"]
    return body


def post(gateway: GatewayProcess, path: str, data: bytes | str, **headers: str) -> requests.Response:
    return requests.post(gateway.url + path, data=data, headers={**JSON_HEADERS, **headers}, timeout=TIMEOUT)


def get(gateway: GatewayProcess, target: str) -> requests.Response:
    return requests.get(gateway.url + target, headers=DEMO_HEADERS, timeout=TIMEOUT)


def raw(gateway: GatewayProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; read the whole answer (the gateway closes after refusing a bad request)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
            if b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def assert_raw_envelope(answer: tuple[int, dict[str, str], bytes], status: int = 400) -> None:
    code, headers, body = answer
    assert code == status, (code, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    payload = json.loads(body)
    assert payload["success"] is False and payload["code"] == "INVALID_PARAMS"
    assert payload["request_id"] == headers["x-request-id"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["server"] == "sms-edge"  # not aiohttp's and Python's versions


def auth_lines() -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in DEMO_HEADERS.items()).encode()


# --- bodies -----------------------------------------------------------------------------------


def test_body_over_the_limit_with_content_length_is_413(gateway):
    assert_envelope(post(gateway, SEND, b"x" * (MAX_BODY + 1)), 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_over_the_limit_is_413(gateway):
    def chunks():
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"[" * 65536

    try:
        response = requests.post(gateway.url + SEND, data=chunks(), headers=JSON_HEADERS, timeout=TIMEOUT)
    except requests.ConnectionError:
        # The gateway may answer and close while the client is still sending: read it raw instead.
        response = None
    if response is not None:
        assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    body = b"".join(b"10000\r\n" + b"[" * 65536 + b"\r\n" for _ in range(MAX_BODY // 65536 + 2))
    request = (
        b"POST "
        + SEND.encode()
        + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + auth_lines()
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + body
        + b"0\r\n\r\n"
    )
    status, _, payload = raw(gateway, request)
    assert status == 413 and json.loads(payload)["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b"\xff\xfe\xfd",
        b'{"phone": "\xff13800138000", "template_id": "1"}',
        b"",
        b"   ",
        b"null",
        b"[]",
        b'"13800138000"',
        b'{"phone": "13800138000", "template_id": "1", "params": {"n": 1e400}}',
        b'{"phone": "13800138000", "template_id": "1", "params": {"n": NaN}}',
        b'{"phone": "13800138000", "template_id": "1", "params": {"n": Infinity}}',
        b'{"phone": "13800138000", "template_id": "1", "params": {"n": -Infinity}}',
        b'{"phone": 1e400, "template_id": "1"}',
        b'{"phone": "13800138000", "template_id": "1", "unknown": 1}',
        b'{"phone": "13800138000", "template_id": "1", "__proto__": {}}',
        b'{"phone": "13800138000", "template_id": "1", "provider": null}',
        b'{"phone": "13800138000", "template_id": "1", "params": null}',
        b'{"phone": "13800138000\\u0000", "template_id": "1"}',
        b'{"phone": "13800138000", "template_id": "1\\u0000"}',
        # Duplicated keys: the last one wins (orjson), here an invalid phone.
        b'{"phone": "13800138000", "phone": "abc", "template_id": "1"}',
    ],
    ids=lambda body: repr(body[:40]),
)
def test_malformed_send_bodies_are_400(gateway, body):
    assert_envelope(post(gateway, SEND, body), 400, "INVALID_PARAMS")


def test_params_with_ten_thousand_keys_is_400(gateway):
    body = {"phone": "13800138000", "template_id": "1", "params": {f"k{i}": i for i in range(10_000)}}
    assert_envelope(post(gateway, SEND, json.dumps(body)), 400, "INVALID_PARAMS")


@pytest.mark.parametrize(
    ("entry", "count"), [("13800138000", 101), ("13800138000", 100_000), ("1", 100_000), (0, 100_000)]
)
def test_batch_with_too_many_phones_is_refused(gateway, entry, count):
    body = json.dumps({"phones": [entry] * count, "template_id": "1"})
    # Over max_body_bytes it is 413 before parsing; under it, the length check answers 400.
    expected = (413, "PAYLOAD_TOO_LARGE") if len(body) > MAX_BODY else (400, "INVALID_PARAMS")
    assert_envelope(post(gateway, BATCH, body), *expected)


def test_batch_with_a_hundred_distinct_garbage_entries_names_them_masked(gateway):
    body = {"phones": [f"+{'9' * 14}{i:02d}" for i in range(100)], "template_id": "1"}
    message = assert_envelope(post(gateway, BATCH, json.dumps(body)), 400)["message"]
    assert "99999999999999" not in message


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
)
def test_a_form_body_is_400_whatever_the_content_type(gateway, content_type):
    body = "phone=13800138000&template_id=1"
    assert_envelope(post(gateway, SEND, body, **{"Content-Type": content_type}), 400)


def test_a_json_body_with_charset_and_odd_content_type_casing_still_works(gateway):
    body = json.dumps({"phone": "13800138000", "template_id": "1"})
    response = post(gateway, SEND, body, **{"Content-Type": "Application/JSON; charset=UTF-8"})
    assert response.status_code == 200, response.text


# --- query strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page=1e30",
        "page=-1",
        "page=0",
        "page=%2B1",
        "page=1%00",
        "page= 1",
        "page=１",
        "per_page=99999999999999999999",
        "per_page=1e2",
        "per_page=-0",
        "status=%00",
        "status=success%00",
        "status=%ff",
        "status=%C0%80",
        "start_time=2024-01-01%0000:00:00",
        "start_time=2024-01-01 00:00:00%00",
        "start_time=9999-12-31 23:59:59&end_time=0001-01-01 00:00:00",
        "start_time=2024-02-30 00:00:00",
        "end_time=0000-01-01 00:00:00",
        "start_time=2024-01-01 24:00:00",
        "start_time=%ff%fe",
        "page=" + "9" * 4000,
        "status=" + "x" * 7000,
    ],
    ids=lambda query: query[:40],
)
def test_absurd_query_values_are_400(gateway, query):
    assert_envelope(get(gateway, f"{RECORDS}?{query}"), 400, "INVALID_PARAMS")


def test_many_unknown_query_keys_are_ignored_or_refused_without_a_500(gateway):
    # 1500 keys: as many as the 8190-byte request line allows (10k keys are in the body test).
    query = "&".join(f"k{i}=1" for i in range(1500))
    response = get(gateway, f"{RECORDS}?{query}")
    assert response.status_code in (200, 400), response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")


def test_repeated_query_parameter_is_answered_without_a_500(gateway):
    response = get(gateway, f"{RECORDS}?page=1&page=abc&page=2")
    assert response.status_code in (200, 400)
    assert response.json()["success"] is (response.status_code == 200)


# --- what aiohttp's HTTP parser refuses before any middleware ---------------------------------


def test_a_request_line_over_8_kb_is_400_in_the_envelope(gateway):
    response = get(gateway, f"{RECORDS}?status=" + "x" * 20_000)
    assert_envelope(response, 400, "INVALID_PARAMS")


def test_a_100_kb_header_is_400_in_the_envelope(gateway):
    request = (
        b"GET /api/account/info HTTP/1.1\r\nHost: x\r\n"
        + auth_lines()
        + b"X-Junk: "
        + b"a" * 100_000
        + b"\r\n\r\n"
    )
    assert_raw_envelope(raw(gateway, request))


def test_two_hundred_headers_is_400_in_the_envelope(gateway):
    junk = b"".join(b"X-Junk-%d: 1\r\n" % i for i in range(200))
    request = b"GET /api/account/info HTTP/1.1\r\nHost: x\r\n" + auth_lines() + junk + b"\r\n"
    assert_raw_envelope(raw(gateway, request))


def test_a_nul_byte_in_a_header_is_400_in_the_envelope(gateway):
    request = (
        b"GET /api/account/info HTTP/1.1\r\nHost: x\r\n" + auth_lines() + b"X-Request-ID: abc\x00def\r\n\r\n"
    )
    assert_raw_envelope(raw(gateway, request))


def test_invalid_utf8_in_the_raw_request_line_is_answered_in_the_envelope(gateway):
    request = b"GET /api/sms/records?status=\xff\xfe HTTP/1.1\r\nHost: x\r\n" + auth_lines() + b"\r\n"
    status, headers, body = raw(gateway, request)
    assert 400 <= status < 500 and headers["content-type"].startswith("application/json"), body
    assert json.loads(body)["success"] is False


def test_garbage_instead_of_http_is_400_in_the_envelope(gateway):
    assert_raw_envelope(raw(gateway, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n"))


def test_a_broken_chunked_encoding_is_400_in_the_envelope(gateway):
    request = (
        b"POST /api/sms/send HTTP/1.1\r\nHost: x\r\n"
        + auth_lines()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    )
    assert_raw_envelope(raw(gateway, request))


def test_the_gateway_still_answers_after_all_that(gateway):
    response = requests.get(gateway.url + "/api/account/info", headers=DEMO_HEADERS, timeout=TIMEOUT)
    assert response.status_code == 200
    log = gateway.log.read_text(encoding="utf-8")
    assert "Traceback" not in log and "INTERNAL_ERROR" not in log


# --- security headers on /api/ ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("get", "/api/account/info", DEMO_HEADERS),
        ("get", "/api/account/info", {}),
        ("get", "/api/sms/records?page=0", DEMO_HEADERS),
        ("post", "/api/sms/send", DEMO_HEADERS),
        ("get", "/api/nope", DEMO_HEADERS),
        ("delete", "/api/sms/send", DEMO_HEADERS),
    ],
)
def test_every_api_answer_is_nosniff_and_no_store(gateway, method, path, headers):
    response = requests.request(method, gateway.url + path, headers=headers, timeout=TIMEOUT)
    assert response.headers["X-Content-Type-Options"] == "nosniff", response.status_code
    assert response.headers["Cache-Control"] == "no-store", response.status_code
