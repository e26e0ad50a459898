"""Hardening: refused requests leave nothing behind, secrets are cheap to check and follow the config,
and connections that never finish a request are closed."""

from __future__ import annotations

import base64
import gc
import hashlib
import importlib
import json
import re
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from aiohttp import web

from gateway.accounts.creation import SHIPPED_DEMO_SECRET
from gateway.accounts.credentials import SecretVerifier, hash_secret, verify_secret
from gateway.accounts.listed import bootstrap_accounts
from gateway.config.loader import parse_config
from gateway.keys import STORE
from gateway.log_throttle import LogThrottle
from gateway.redis.client import RedisSource
from gateway.store.backends import build_store
from tests.conftest import DEMO_HEADERS, DEMO_KEY, ROOT, SEND_BODY, add_account, default_document
from tests.gateway_process import GatewayProcess, run_py


def legacy_scrypt_hash(secret: str) -> str:
    """A secret hash as releases before the fast hash wrote it."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encode = base64.b64encode
    return f"scrypt$16384$8$1${encode(salt).decode()}${encode(digest).decode()}"


def live_requests() -> int:
    gc.collect()
    return sum(isinstance(obj, web.BaseRequest) for obj in gc.get_objects())


async def test_refused_requests_are_not_kept_alive_by_a_shared_error(client):
    """A re-raised shared exception kept every 401's request in its growing traceback."""
    for headers in ({}, {"X-API-Key": DEMO_KEY, "X-API-Secret": "wrong-secret-123"}):
        await client.get("/api/account/info", headers=headers)
    before = live_requests()
    for _ in range(100):
        response = await client.get("/api/account/info", headers={"X-API-Key": "", "X-API-Secret": ""})
        assert response.status == 401
        response = await client.get(
            "/api/account/info", headers={"X-API-Key": DEMO_KEY, "X-API-Secret": "wrong-secret-123"}
        )
        assert response.status == 401
    assert live_requests() - before < 5


def test_no_module_keeps_an_error_instance_to_raise_again():
    """Errors are made where they are raised: a shared instance collects every raise's traceback."""
    shared = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        shared += [
            f"{module.__name__}.{name}"
            for name, value in vars(module).items()
            if isinstance(value, BaseException)
        ]
    assert shared == []


def test_secrets_are_kept_as_a_fast_keyed_hash():
    stored = hash_secret("s3cret-token-value")
    assert stored.startswith("hmac-sha256$") and "s3cret" not in stored
    assert hash_secret("s3cret-token-value") != stored  # salted
    assert verify_secret("s3cret-token-value", stored)
    assert not verify_secret("s3cret-token-valuE", stored)
    started = time.perf_counter()
    for _ in range(1000):
        verify_secret("wrong", stored)
    assert (time.perf_counter() - started) / 1000 < 0.001  # scrypt took ~70 ms a check


async def test_unknown_key_and_wrong_secret_are_refused_alike():
    verifier = SecretVerifier()
    stored = hash_secret("right-secret-value")
    assert await verifier.verify("right-secret-value", stored)
    assert not await verifier.verify("wrong-secret-value", stored)
    assert not await verifier.verify("right-secret-value", None)
    assert not await verifier.verify("anything", "garbage")


async def test_a_legacy_scrypt_hash_still_works_and_is_upgraded_on_login(client):
    account, headers = await add_account(client, "legacy", balance_milli=1000)
    store = client.app[STORE]
    await store.update_account(account.api_key, secret_hash=legacy_scrypt_hash(headers["X-API-Secret"]))
    wrong = {**headers, "X-API-Secret": "not-the-secret"}
    assert (await client.get("/api/account/info", headers=wrong)).status == 401
    assert (await store.account_by_key(account.api_key)).secret_hash.startswith("scrypt$")
    assert (await client.get("/api/account/info", headers=headers)).status == 200
    upgraded = (await store.account_by_key(account.api_key)).secret_hash
    assert upgraded.startswith("hmac-sha256$") and verify_secret(headers["X-API-Secret"], upgraded)
    assert (await client.get("/api/account/info", headers=headers)).status == 200
    assert (await client.get("/api/account/info", headers=wrong)).status == 401


async def test_a_listed_accounts_secret_follows_the_config(tmp_path):
    document = default_document()
    document["store"]["path"] = str(tmp_path / "boot.db")
    document["accounts"][0].update(api_key=DEMO_KEY, api_secret=SHIPPED_DEMO_SECRET)
    config = parse_config(document)
    redis = RedisSource(config.redis)  # never asked for: the store is SQLite
    store = build_store(config, redis)
    await store.open()
    try:
        first = parse_config(document)
        await bootstrap_accounts(store, first.accounts)
        shipped = (await store.account_by_key(DEMO_KEY)).secret_hash
        assert verify_secret(SHIPPED_DEMO_SECRET, shipped)
        await store.top_up(DEMO_KEY, 5000)
        document["accounts"][0]["api_secret"] = "a-new-secret-from-env"
        await bootstrap_accounts(store, parse_config(document).accounts)
        account = await store.account_by_key(DEMO_KEY)
        assert verify_secret("a-new-secret-from-env", account.secret_hash)
        assert not verify_secret(SHIPPED_DEMO_SECRET, account.secret_hash)
        assert account.balance_milli == first.accounts[0].balance_milli + 5000  # not overwritten
        unchanged = account.secret_hash
        await bootstrap_accounts(store, parse_config(document).accounts)
        assert (await store.account_by_key(DEMO_KEY)).secret_hash == unchanged  # no rewrite
    finally:
        await store.close()


def _serve(tmp_path: Path, host: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    """``serve`` on the shipped config: its exit and stderr, or -1 and the lines up to listening."""
    document = default_document()
    document["store"]["path"] = str(tmp_path / "serve.db")
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", **({"SMS_EDGE_DEMO_SECRET": secret} if secret else {})}
    command = [sys.executable, "run.py", "serve", "--config", str(config), "--host", host, "--port", "0"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as process:
        lines = []
        for line in process.stderr:  # until it exits, or says it listens (then it is stopped)
            lines.append(line)
            if "listening on" in line:
                process.terminate()
                process.wait(timeout=30)
                return subprocess.CompletedProcess(command, -1, "", "".join(lines))
        return subprocess.CompletedProcess(command, process.wait(timeout=30), "", "".join(lines))


def _refusals(served: subprocess.CompletedProcess[str]) -> list[str]:
    """The refusals logged (JSON lines: stderr is a pipe), as their messages."""
    messages = [json.loads(line)["message"] for line in served.stderr.splitlines()]
    return [message for message in messages if "refusing to listen" in message]


def test_serve_refuses_a_public_address_while_the_demo_secret_is_shipped(tmp_path):
    refused = _serve(tmp_path, "0.0.0.0", None)
    assert refused.returncode == 2
    [line] = _refusals(refused)
    assert SHIPPED_DEMO_SECRET not in refused.stderr
    assert "0.0.0.0" in line and "demo" in line and SHIPPED_DEMO_SECRET not in line
    # A changed secret is applied first, so the same store now starts.
    assert _serve(tmp_path, "0.0.0.0", "a-real-secret-0123456").returncode == -1
    # ... and going back to the public secret is refused again, the change logged as JSON.
    again = _serve(tmp_path, "0.0.0.0", None)
    assert again.returncode == 2 and len(_refusals(again)) == 1
    assert any(
        "replaced by the config's" in json.loads(entry)["message"]
        for entry in again.stderr.splitlines()
        if entry.startswith("{")
    )
    with sqlite3.connect(tmp_path / "serve.db") as db:
        [(stored,)] = db.execute("SELECT secret_hash FROM accounts").fetchall()
    assert verify_secret(SHIPPED_DEMO_SECRET, stored)


def test_the_refusals_advice_works_and_the_rotated_secret_stays(tmp_path):
    """The refusal names a command; run as printed, it retires the shipped secret for good: the
    next starts keep the rotated one (the config's own secret did not change), and the greeting
    stops pointing at the shipped one."""
    [line] = _refusals(_serve(tmp_path, "0.0.0.0", None))
    [advice] = re.findall(r'"(python run\.py accounts rotate-secret [^"]+)"', line)
    assert DEMO_KEY in advice and str(tmp_path / "serve.yaml") in advice
    rotated = run_py(*shlex.split(advice)[2:])  # after "python run.py"
    assert rotated.returncode == 0, rotated.stderr
    for _ in range(2):  # and again: a start does not undo it
        started = _serve(tmp_path, "0.0.0.0", None)
        assert started.returncode == -1, started.stderr
    [welcome] = [entry for entry in started.stderr.splitlines() if "Welcome to SMS Edge" in entry]
    assert DEMO_KEY in welcome and "shipped" not in welcome and "rotate-secret" in welcome
    assert SHIPPED_DEMO_SECRET not in started.stderr


def test_serve_on_loopback_keeps_the_demo_secret_for_trying_it_out(tmp_path):
    assert _serve(tmp_path, "127.0.0.1", None).returncode == -1


@pytest.fixture
def slow_gateway(tmp_path):
    document = default_document()
    document["store"]["path"] = str(tmp_path / "slow.db")
    document["server"].update(header_timeout=1, body_timeout=1)
    gateway = GatewayProcess(document, tmp_path, "slow")
    yield gateway
    gateway.stop()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_connections_that_never_finish_a_request_are_closed(slow_gateway):
    sockets = []
    for n in range(50):
        sock = socket.create_connection(("127.0.0.1", slow_gateway.port))
        if n % 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers never end
        sockets.append(sock)
    started = time.monotonic()
    try:
        assert all(_closed_within(sock, 5) for sock in sockets)
        assert time.monotonic() - started < 5
    finally:
        for sock in sockets:
            sock.close()


def test_an_idle_keep_alive_connection_is_closed(slow_gateway):
    with socket.create_connection(("127.0.0.1", slow_gateway.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert _closed_within(sock, 5)


def test_a_body_that_trickles_is_answered_408_and_closed(slow_gateway):
    with socket.create_connection(("127.0.0.1", slow_gateway.port)) as sock:
        sock.sendall(
            b"POST /api/sms/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nX-API-Key: " + DEMO_HEADERS["X-API-Key"].encode() + b'\r\n\r\n{"phone": '
        )
        sock.settimeout(3)  # answered after body_timeout (1 s) and closed at once, no lingering
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b'"REQUEST_TIMEOUT"' in body and b'"success":false' in body


def test_a_client_that_drops_mid_body_is_a_499_not_a_bug(slow_gateway):
    """A client gone in the middle of its body is its own doing: one line saying so, no traceback,
    and 499 (client closed request) in the access line and the metrics, not 500."""
    with socket.create_connection(("127.0.0.1", slow_gateway.port)) as sock:
        sock.sendall(
            b"POST /api/sms/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"phone": '
        )
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    metrics = ""
    for _ in range(50):  # the gateway notices the reset on its own time
        metrics = requests.get(f"{slow_gateway.url}/metrics", timeout=5).text
        if 'status="499"' in metrics:
            break
        time.sleep(0.1)
    assert 'smsedge_http_requests_total{method="POST",route="/api/sms/send",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics
    slow_gateway.stop()
    log = slow_gateway.log.read_text(encoding="utf-8")
    assert "Traceback" not in log and "unhandled error" not in log
    assert "client closed the connection" in log and '"status":499' in log


async def test_a_whole_body_within_the_timeout_is_served(make_client):
    client = await make_client(server={"body_timeout": 1})
    response = await client.post("/api/sms/send", json=SEND_BODY, headers=DEMO_HEADERS)
    assert response.status == 200


def test_a_log_throttle_lets_one_line_through_per_interval_and_counts_the_rest():
    now = [100.0]
    throttle = LogThrottle(60.0, clock=lambda: now[0])
    assert throttle.due() == 0
    assert [throttle.due() for _ in range(5)] == [None] * 5
    now[0] += 60
    assert throttle.due() == 5
    assert throttle.due() is None


async def test_plain_http_answers_name_no_server_version_and_carry_no_hsts(client):
    for path in ("/healthz", "/api/account/info", "/", "/no/such/page"):
        response = await client.get(path, headers=DEMO_HEADERS)
        assert response.headers["Server"] == "sms-edge", path  # not aiohttp's and Python's versions
        assert "Strict-Transport-Security" not in response.headers, path  # HTTP: a browser ignores it
