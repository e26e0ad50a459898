"""Which log lines a person gets: ``run.py serve`` with its stderr on a terminal (a pseudo-terminal
from ``pty.openpty``) or on a pipe, with ``logging.format`` left out or set; and the greeting."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from gateway.accounts.listed import bootstrap_accounts
from gateway.accounts.service import AccountService
from gateway.config.loader import parse_config
from gateway.logs import AccessLog, MaskingFilter, TextFormatter, log_masked
from gateway.process.greeting import demo_secret, greeting
from gateway.redis.client import RedisSource
from gateway.store.backends import build_store
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, ROOT, default_document
from tests.gateway_process import GatewayProcess, free_port

PHONE, REFUSED = "13912345678", "13712345678"
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR)\s+[a-z_.]+: ")


def _document(directory: Path, log_format: str | None) -> dict:
    document = default_document()
    document["store"]["path"] = str(directory / "logs.db")
    document["providers"]["backends"]["flaky"] = {"plugin": "mock", "price": 0.04, "fail_rate": 1.0}
    if log_format:
        document["logging"]["format"] = log_format
    return document


def _drain(fd: int, into: bytearray) -> None:
    """Read the terminal's master side until the gateway closes it: a full pty would block it."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every writer of the slave side is gone
            return
        if not chunk:
            return
        into += chunk


def _run_gateway(directory: Path, log_format: str | None, *, tty: bool) -> str:
    """Start the gateway, send one accepted and one refused message, stop it; its stderr, decoded."""
    config = directory / "gateway.yaml"
    config.write_text(yaml.safe_dump(_document(directory, log_format), sort_keys=False))
    port = free_port()
    env = {**os.environ, "SMS_EDGE_DEMO_KEY": DEMO_KEY, "SMS_EDGE_DEMO_SECRET": DEMO_SECRET}
    output = bytearray()
    if tty:
        master, slave = pty.openpty()
        stderr, reader = slave, threading.Thread(target=_drain, args=(master, output), daemon=True)
    else:
        stderr, reader = subprocess.PIPE, None
    process = subprocess.Popen(
        [sys.executable, "run.py", "serve", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    if tty:
        os.close(slave)  # the gateway holds its own copy; EIO on read once it exits
        reader.start()
    else:
        reader = threading.Thread(target=lambda: output.extend(process.stderr.read()), daemon=True)
        reader.start()
    try:
        _traffic(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=10)
        if tty:
            os.close(master)
        else:
            process.stderr.close()
    return output.decode("utf-8")


def _traffic(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "gateway exited"
        assert time.monotonic() < deadline, "gateway did not become ready in 30 s"
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    send = f"{url}/api/sms/send"
    ok = requests.post(send, json={"phone": PHONE, "template_id": "123456"}, headers=DEMO_HEADERS, timeout=10)
    refused = requests.post(
        send,
        json={"phone": REFUSED, "template_id": "123456", "provider": "flaky"},
        headers=DEMO_HEADERS,
        timeout=10,
    )
    assert (ok.status_code, refused.status_code) == (200, 502)


def _assert_private(output: str) -> None:
    for number in (PHONE, REFUSED):
        assert number not in output and number[1:] not in output
    assert DEMO_SECRET not in output


def _greeting_of(messages: list[str]) -> str:
    [line] = [message for message in messages if "Welcome to SMS Edge" in message]
    return line


def test_a_terminal_gets_text_lines_and_the_greeting(tmp_path):
    output = _run_gateway(tmp_path, None, tty=True)
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    line = _greeting_of(lines)
    assert re.search(r"docs http://127\.0\.0\.1:\d+/ · console http://127\.0\.0\.1:\d+/console", line)
    assert DEMO_KEY in line and "shipped demo secret" in line
    access = [line for line in lines if "smsedge.access: POST /api/sms/send" in line]
    assert len(access) == 2 and "status=502" in access[1] and "latency_ms=" in access[1]
    _assert_private(output)


def test_a_pipe_gets_json_lines_and_the_greeting_too(tmp_path):
    output = _run_gateway(tmp_path, None, tty=False)
    entries = [json.loads(line) for line in output.splitlines()]
    assert DEMO_KEY in _greeting_of([entry["message"] for entry in entries])
    assert {e["status"] for e in entries if e["logger"] == "smsedge.access"} >= {200, 502}
    _assert_private(output)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_the_configured_format_wins_over_the_terminal_check(tmp_path, log_format):
    output = _run_gateway(tmp_path, log_format, tty=log_format == "json")
    lines = output.splitlines()
    if log_format == "json":
        assert all(json.loads(line)["level"] for line in lines)
    else:
        assert lines and all(TEXT_LINE.match(line) for line in lines), lines
    _assert_private(output)


def _config(accounts: list[dict], **server: object):
    document = default_document()
    document["accounts"] = accounts
    document["server"].update(server)
    return parse_config(document)


def test_no_greeting_without_the_demo_account_and_never_a_secret():
    seed = default_document()["accounts"][0]
    assert greeting(_config([]), None) is None
    assert greeting(_config([{**seed, "name": "shop"}]), None) is None
    own = greeting(
        _config(
            [{**seed, "api_key": "sk_own_key_abcdefgh", "api_secret": "private-Zq7Wk-9"}],
            host="0.0.0.0",
            port=9000,
        ),
        "config",
    )
    assert "http://127.0.0.1:9000/console" in own and "sk_own_key_abcdefgh" in own
    assert "private-Zq7Wk-9" not in own and "the one you set" in own
    public = greeting(_config([seed], public_url="https://sms.example.com"), "shipped")
    assert "docs https://sms.example.com/ · console https://sms.example.com/console" in public


async def test_the_greeting_says_which_secret_the_demo_account_has_in_the_store(tmp_path):
    """Read from the stored hash: the shipped secret, the config's, or one rotated since (then the
    shipped one is no longer offered)."""
    document = default_document()
    document["store"]["path"] = str(tmp_path / "greeting.db")
    document["accounts"][0].update(api_key=DEMO_KEY, api_secret=DEMO_SECRET)  # the shipped ones
    config = parse_config(document)
    async with RedisSource(config.redis) as redis:
        store = build_store(config, redis)
        await store.open()
        try:
            assert await demo_secret(store, config) is None  # not created yet
            await bootstrap_accounts(store, config.accounts)
            assert await demo_secret(store, config) == "shipped"
            assert "the shipped demo secret" in greeting(config, "shipped")
            await AccountService(store).rotate_secret("ops", config.accounts[0].api_key)
            assert await demo_secret(store, config) == "rotated"
            rotated = greeting(config, "rotated")
            assert "shipped" not in rotated and "rotate-secret" in rotated
            document["accounts"][0]["api_secret"] = "own-secret-0123456789"
            changed = parse_config(document)
            await bootstrap_accounts(store, changed.accounts)
            assert await demo_secret(store, changed) == "config"
        finally:
            await store.close()


def test_the_greeting_names_the_operator_console_only_when_admin_is_on():
    seed = default_document()["accounts"][0]
    assert "/admin" not in greeting(_config([seed]), "shipped")
    document = default_document()
    document["admin"] = {"tokens": [{"name": "ops", "token": "ops-token-0123456789abcdef"}]}
    on = greeting(parse_config(document), "shipped")
    assert "status http://127.0.0.1:8080/status · admin http://127.0.0.1:8080/admin" in on
    assert "ops-token-0123456789abcdef" not in on


class _Writes(io.RawIOBase):
    """A file that keeps each write as it came: what a pipe would be handed, one call at a time."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.writes.append(bytes(data))
        return len(data)


async def test_access_lines_leave_in_whole_lines_no_write_beyond_pipe_buf():
    """Several workers share one pipe: a write of at most PIPE_BUF bytes is atomic there, so no
    worker's line can land inside another's. A busy loop turn's lines go out in such writes."""
    raw = _Writes()
    access = AccessLog()
    access.direct(io.BufferedWriter(raw, buffer_size=1 << 16))
    fields = {"request_id": "0" * 32, "route": "/api/sms/send", "status": 200, "phones": 1}
    for n in range(500):
        access.write(f"POST /api/sms/send 200 #{n}", fields)
    await asyncio.sleep(0)  # the end of this loop turn
    assert raw.writes and all(len(chunk) <= select.PIPE_BUF for chunk in raw.writes)
    assert all(chunk.endswith(b"\n") for chunk in raw.writes)
    lines = b"".join(raw.writes).splitlines()
    assert [json.loads(line)["message"] for line in lines] == [
        f"POST /api/sms/send 200 #{n}" for n in range(500)
    ]


def test_a_stop_is_logged_with_the_drain_and_the_end(tmp_path):
    """An operator sees when a gateway stops taking requests, how long it may drain, and that it
    stopped: one line each, naming the process."""
    document = default_document()
    document["store"]["path"] = str(tmp_path / "stop.db")
    document["logging"] = {"format": "json"}
    gateway = GatewayProcess(document, tmp_path, "stop")
    pid = gateway.process.pid
    assert gateway.stop() == 0
    messages = [json.loads(line)["message"] for line in gateway.log.read_text().splitlines()]
    assert f"process {pid} shutting down: draining requests for up to 30 s" in messages
    assert f"process {pid} stopped" in messages


def test_text_lines_escape_control_characters_in_every_field():
    """A name with a newline (an account made before names were checked, or a carrier's message)
    cannot forge a line, nor a direction override turn one around: escaped, as ``repr`` would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(TextFormatter())
    logger = logging.getLogger("smsedge.test_text_escapes")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    forged = "shop\n12:00:00.000 ERROR   smsedge.admin: forged\r\x1b[2J\u202eevil\u2028\x00"
    try:
        logger.warning("created account %s from config", forged)
        log_masked(logger, f"POST /api/sms/send 200 {forged}", {"account": forged, "status": 200})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with a traceback")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert [line for line in lines if TEXT_LINE.match(line)] == lines[:3]
    assert "Traceback" in lines[3] and len(lines) > 4  # a traceback keeps its own lines
    for line in lines[:2]:
        assert "\\n12:00:00.000 ERROR" in line and "\\r\\x1b[2J\\u202eevil\\u2028\\x00" in line
    assert "account=shop\\n12:00:00.000" in lines[1] and "status=200" in lines[1]
    assert not any(char in stream.getvalue() for char in "\r\x1b\u202e\u2028\x00")
