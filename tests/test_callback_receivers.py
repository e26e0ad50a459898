"""The reference receivers of docs/callbacks.md, each run as its own process (python, php -S, node) on
loopback: a signed event is accepted and handed over, a forged, stale or tampered one is refused and
handed over to nobody. The page shows the files as they are, so what a reader copies is what ran here.

What sends the signed events is the ``sender`` fixture (a ``Sender``), twice over: the gateway's own
signing over plain HTTP (quick), and a real gateway (``python run.py serve``) posting the events of a
real send from its outbox, signed with the secret ``accounts callback-secret`` made, to a
``callback_url`` inside the account's prefixes. The receivers' side of the tests is the same for both.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests

from gateway.callbacks.signing import HEADER_EVENT_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, sign
from tests.conftest import DEMO_HEADERS, DEMO_KEY, ROOT
from tests.gateway_process import GatewayProcess, free_port, run_py
from tests.test_crash_safety import crash_document

PAGE = ROOT / "docs" / "callbacks.md"
FILES = ROOT / "docs" / "callbacks"
SECRET = "cbs_" + "reference-receivers-secret-0123456789"
HANDOVER_SECONDS = 10  # how long an accepted event may take to reach the receiver's handler
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Receiver:
    """A reference receiver listening on ``url``, appending what it accepts to ``events``."""

    url: str
    events: Path

    def handed_over(self) -> list[str]:
        """The event ids the receiver accepted and handed to its handler, in order."""
        if not self.events.exists():
            return []
        return [json.loads(line)["event_id"] for line in self.events.read_text("utf-8").splitlines()]


def _command(name: str, port: int) -> list[str]:
    script = str(FILES / name)
    return {
        "receiver.py": [sys.executable, script],
        "receiver.php": ["php", "-S", f"127.0.0.1:{port}", script],
        "receiver.js": ["node", script],
    }[name]


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the receiver exited {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the receiver did not listen within 15 s: {log.read_text()}")


@pytest.fixture(scope="module", params=["receiver.py", "receiver.php", "receiver.js"])
def receiver(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sender: Sender
) -> Iterator[Receiver]:
    folder = tmp_path_factory.mktemp(request.param.replace(".", "-"))
    port, log, events = free_port(), folder / "output.log", folder / "events.jsonl"
    env = {
        **os.environ,
        "SMS_EDGE_CALLBACK_SECRET": sender.secret,
        "PORT": str(port),
        "EVENTS_FILE": str(events),
    }
    command = _command(request.param, port)
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is missing: `make test-packages` installs it")
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_listening(process, port, log)
        yield Receiver(f"http://127.0.0.1:{port}/sms-events", events)
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST as the gateway does (JSON, these headers); the answer's status."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def example_event() -> dict[str, object]:
    """The page's example body with an event id of its own, so each test finds its own event."""
    blocks = FENCE.findall(PAGE.read_text("utf-8"))
    body = json.loads(next(code for language, code in blocks if language == "json"))
    return {**body, "event_id": str(uuid.uuid4())}


def signed_headers(secret: str, body: bytes, event_id: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers the gateway puts on a POST of ``body``, signed at ``timestamp`` (else now)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, timestamp, body),
        HEADER_EVENT_ID: event_id,
    }


class Sender(Protocol):
    """What makes signed events reach a receiver: the secret they are signed with, which the receiver
    is started with, and ``deliver``, which sends events to ``url`` and says their event ids."""

    secret: str

    def deliver(self, url: str) -> list[str]: ...


@dataclass(frozen=True)
class SigningSender:
    """The gateway's signing, now, over plain HTTP: the page's example event, answered 2xx."""

    secret: str = SECRET

    def deliver(self, url: str) -> list[str]:
        event = example_event()
        body = json.dumps(event, ensure_ascii=False).encode()
        status = post(url, body, signed_headers(self.secret, body, str(event["event_id"])))
        assert 200 <= status < 300, status
        return [str(event["event_id"])]


class GatewaySender:
    """A real gateway: each ``deliver`` sends one SMS with ``callback_url=url`` (its prefix added to
    the demo account's first) and waits for the gateway's deliverer to post its events."""

    def __init__(self, directory: Path) -> None:
        self._db = directory / "gateway.db"
        self._gateway = GatewayProcess(crash_document(self._db), directory, name="callbacks")
        self._prefixes: list[str] = []
        self.secret = self._cli("callback-secret")["callback_secret"]

    def _cli(self, *args: str) -> Any:
        done = run_py("accounts", *args, "--key", DEMO_KEY, "--config", self._gateway.config)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    def deliver(self, url: str) -> list[str]:
        prefix = url.rsplit("/", 1)[0] + "/"
        if prefix not in self._prefixes:
            self._prefixes.append(prefix)
            self._cli("set", "--callback-prefixes", ",".join(self._prefixes))
        sent = requests.post(
            f"{self._gateway.url}/api/sms/send",
            headers=DEMO_HEADERS,
            json={"phone": "13800138000", "template_id": "123456", "callback_url": url},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        message_id = sent.json()["data"]["message_id"]
        deadline = time.monotonic() + HANDOVER_SECONDS
        while (states := self._events(message_id)) and "pending" in states.values():
            assert time.monotonic() < deadline, states
            time.sleep(0.05)
        assert states and set(states.values()) == {"delivered"}, states
        return list(states)

    def _events(self, message_id: str) -> dict[str, str]:
        """The message's events in the gateway's outbox: event id → state, in sequence."""
        with contextlib.closing(sqlite3.connect(self._db)) as db:
            rows = db.execute(
                "SELECT event_id, state FROM callback_outbox WHERE message_id = ? ORDER BY sequence",
                (message_id,),
            ).fetchall()
        return dict(rows)

    def stop(self) -> None:
        self._gateway.stop()


@pytest.fixture(scope="module", params=["signing", pytest.param("gateway", marks=pytest.mark.subprocess)])
def sender(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sender]:
    if request.param == "signing":
        yield SigningSender()
        return
    gateway = GatewaySender(tmp_path_factory.mktemp("gateway"))
    try:
        yield gateway
    finally:
        gateway.stop()


def _wait_for_handover(receiver: Receiver, event_ids: list[str]) -> list[str]:
    """What the receiver handed over once every one of ``event_ids`` arrived (or the time ran out)."""
    deadline = time.monotonic() + HANDOVER_SECONDS
    while not set(event_ids) <= set(handed := receiver.handed_over()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return handed


def test_signed_events_are_accepted_and_handed_over_once(receiver, sender):
    event_ids = sender.deliver(receiver.url)
    handed = _wait_for_handover(receiver, event_ids)
    assert [handed.count(event_id) for event_id in event_ids] == [1] * len(event_ids) != []


def test_a_signature_header_with_a_value_per_secret_is_accepted(receiver, sender):
    """A header may carry several values (one per secret): one of them matching is enough."""
    event = example_event()
    body = json.dumps(event).encode()
    headers = signed_headers(sender.secret, body, str(event["event_id"]))
    old = sign("the-old-secret", int(headers[HEADER_TIMESTAMP]), body)
    status = post(receiver.url, body, {**headers, HEADER_SIGNATURE: f"{old},{headers[HEADER_SIGNATURE]}"})
    assert (status, receiver.handed_over().count(event["event_id"])) == (200, 1)


# Requests a receiver must refuse: (secret, body, event id) → what is POSTed instead.
def _forged(secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    return body, {**signed_headers(secret, body, event_id), HEADER_SIGNATURE: "v1=" + "0" * 64}


def _other_secret(secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(secret + "-not", body, event_id)


def _stale(secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(secret, body, event_id, int(time.time()) - 301)


def _from_the_future(secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    return body, signed_headers(secret, body, event_id, int(time.time()) + 600)


def _tampered(secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    changed = json.dumps({**json.loads(body), "status": "failed"}).encode()
    assert changed != body
    return changed, signed_headers(secret, body, event_id)


def _unsigned(secret: str, body: bytes, event_id: str) -> tuple[bytes, dict[str, str]]:
    return body, {HEADER_EVENT_ID: event_id}


@pytest.mark.parametrize(
    "attack",
    [_forged, _other_secret, _stale, _from_the_future, _tampered, _unsigned],
    ids=lambda f: f.__name__,
)
def test_a_request_not_signed_now_with_the_secret_is_refused_and_not_handed_over(receiver, sender, attack):
    event = example_event()
    body, headers = attack(sender.secret, json.dumps(event).encode(), str(event["event_id"]))
    status = post(receiver.url, body, headers)
    assert (400 <= status < 500, event["event_id"] in receiver.handed_over()) == (True, False)


def test_the_page_shows_each_receiver_file_as_it_is():
    shown = FENCE.findall(PAGE.read_text("utf-8"))
    files = {"python": "receiver.py", "php": "receiver.php", "javascript": "receiver.js"}
    expected = [(language, (FILES / name).read_text("utf-8")) for language, name in files.items()]
    assert [pair for pair in expected if pair not in shown] == []
