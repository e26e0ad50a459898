"""Delivery callbacks across a crash: a gateway killed with SIGKILL while it is posting events,
then restarted on the same SQLite file, posts every event (none lost), none that no status change
wrote (none invented), and again at most the ones it held when it died.

A real ``python run.py serve`` process and a real receiver (a threaded HTTP server on loopback)
that first holds every POST unanswered, so the gateway dies mid-delivery, then answers 200.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.conftest import DEMO_HEADERS, DEMO_KEY
from tests.gateway_process import GatewayProcess, run_py
from tests.test_crash_safety import TEMPLATE, crash_document

pytestmark = pytest.mark.slow  # waits out the leases the killed gateway held (30 s)
SENDS = 8


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.held = threading.Event()  # set: POSTs wait (unanswered) until ``released``
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.bodies: list[dict] = []  # answered 200
        self.arrived = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.arrived += 1
        if self.server.held.is_set():
            self.server.released.wait(60)
            return  # the gateway is gone by now: no answer
        with self.server.lock:
            self.server.bodies.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


def test_a_gateway_killed_mid_delivery_posts_every_event_after_restart(tmp_path: Path, receiver: Receiver):
    document = crash_document(tmp_path / "crash.db")
    prefix = receiver.url.rsplit("/", 1)[0] + "/"
    document["accounts"][0].update(callback_url=receiver.url, callback_prefixes=[prefix])
    started = [GatewayProcess(document, tmp_path, name="callbacks-0")]
    try:
        secret = run_py("accounts", "callback-secret", "--key", DEMO_KEY, "--config", started[0].config)
        assert secret.returncode == 0, secret.stderr
        receiver.held.set()
        sent = [
            requests.post(
                f"{started[0].url}/api/sms/send",
                headers=DEMO_HEADERS,
                json={"phone": f"1390000000{n}", **TEMPLATE},
                timeout=10,
            ).json()["data"]["message_id"]
            for n in range(SENDS)
        ]
        deadline = time.monotonic() + 20
        while receiver.arrived == 0:
            assert time.monotonic() < deadline, "no callback was ever posted"
            time.sleep(0.02)
        held = receiver.arrived
        started[0].process.send_signal(signal.SIGKILL)
        started[0].process.wait(timeout=10)
        receiver.held.clear()

        started.append(GatewayProcess(document, tmp_path, name="callbacks-1"))
        deadline = time.monotonic() + 60  # the events it held wait for their 30 s leases to run out
        while len({body["event_id"] for body in receiver.bodies}) < SENDS:
            assert time.monotonic() < deadline, f"{len(receiver.bodies)} of {SENDS} events arrived"
            time.sleep(0.1)
    finally:
        for gateway in started:
            gateway.stop()
    with sqlite3.connect(tmp_path / "crash.db") as db:
        written = dict(db.execute("SELECT event_id, message_id FROM callback_outbox").fetchall())
        states = {state for (state,) in db.execute("SELECT state FROM callback_outbox")}
    assert sorted(written.values()) == sorted(sent)  # one accepted event per send, no other
    delivered = [(body["event_id"], body["message_id"]) for body in receiver.bodies]
    assert {event_id for event_id, _ in delivered} == set(written)  # every one, none invented
    assert all(written[event_id] == message_id for event_id, message_id in delivered)
    assert len(delivered) - SENDS <= held  # posted twice: at most those in flight at the kill
    assert states == {"delivered"}
