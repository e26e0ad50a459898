"""Slow clients over TLS are held to ``server.header_timeout`` as on plain HTTP (tests/test_hardening.py).

A client that connects and never sends, or stops in the middle of its ClientHello, or trickles its
ClientHello and then its request header, or finishes the handshake and then trickles its header,
must lose its connection once ``header_timeout`` has passed since it connected. Each client here
drives TLS by hand (``ssl.MemoryBIO`` over a raw socket), never answers the gateway's close_notify
(as a slowloris client would not) and watches for the TCP close itself: that is when the gateway's
descriptor is free again, not merely when the gateway stopped talking.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import default_document
from tests.gateway_process import GatewayProcess
from tests.test_tls import Pki, tls_section

SLACK = 2.5  # seconds past the limit a loaded test machine may take to notice the close


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def start(tmp_path: Path, pki: Pki) -> Iterator[Callable[[float], GatewayProcess]]:
    """Start a TLS gateway with ``header_timeout`` seconds; all are stopped afterwards."""
    started: list[GatewayProcess] = []

    def launch(header_timeout: float) -> GatewayProcess:
        document = default_document()
        document["store"]["path"] = str(tmp_path / f"slow-{len(started)}.db")
        document["server"].update(header_timeout=header_timeout, tls=tls_section(pki))
        started.append(
            GatewayProcess(
                document, tmp_path, f"slow-{len(started)}", requests_options={"verify": str(pki.ca.cert)}
            )
        )
        return started[-1]

    yield launch
    for gateway in started:
        gateway.stop()


class HandDrivenTls:
    """A TLS client over a raw socket: the test decides when each byte leaves."""

    def __init__(self, port: int, pki: Pki) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.opened = time.monotonic()
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname="127.0.0.1")

    def client_hello(self) -> bytes:
        with contextlib.suppress(ssl.SSLWantReadError):
            self._tls.do_handshake()
        return self._outgoing.read()

    def handshake(self) -> None:
        """The whole handshake at once: the ClientHello, the server's flight, ours."""
        self.sock.sendall(self.client_hello())
        self.finish_handshake()

    def finish_handshake(self) -> None:
        """Read the server's flight and send ours; the ClientHello must have been sent."""
        while True:
            received = self.sock.recv(65536)
            assert received, "the gateway closed the connection during the handshake"
            self._incoming.write(received)
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                continue
            self.sock.sendall(self._outgoing.read())
            return

    def send(self, data: bytes) -> None:
        self._tls.write(data)
        self.sock.sendall(self._outgoing.read())

    def answer(self) -> bytes:
        """One whole HTTP answer (its body framed by Content-Length), in plain text."""
        plain = b""
        while True:
            head, ended, body = plain.partition(b"\r\n\r\n")
            if ended and len(body) >= int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
                return plain
            try:
                plain += self._tls.read(65536)
            except ssl.SSLWantReadError:
                received = self.sock.recv(65536)
                assert received, "the gateway closed the connection"
                self._incoming.write(received)

    def seconds_until_closed(self, limit: float) -> float | None:
        """Seconds from connecting until the gateway closed the TCP connection (None: not in ``limit``)."""
        self.sock.settimeout(limit)
        try:
            while self.sock.recv(65536):  # the server's handshake messages, tickets, close_notify
                pass
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return time.monotonic() - self.opened

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> HandDrivenTls:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def test_connections_that_never_finish_the_tls_handshake_are_closed_at_the_header_timeout(start, pki):
    gateway = start(1)
    clients = [HandDrivenTls(gateway.port, pki) for _ in range(100)]
    try:
        for client in clients[::2]:  # half stop in the middle of their ClientHello, half send nothing
            hello = client.client_hello()
            client.sock.sendall(hello[: len(hello) // 2])
        closed = [client.seconds_until_closed(1 + SLACK) for client in clients]
        assert None not in closed
        assert max(closed) < 1 + SLACK
    finally:
        for client in clients:
            client.close()


def test_a_header_trickled_after_the_tls_handshake_is_cut_at_the_header_timeout(start, pki):
    with HandDrivenTls(start(1).port, pki) as client:
        client.handshake()
        client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # the header never ends
        closed = client.seconds_until_closed(1 + SLACK)
        assert closed is not None and closed < 1 + SLACK


def test_a_slow_handshake_counts_against_the_header_timeout(start, pki):
    """One limit from the connection's opening: a client cannot take header_timeout for its
    handshake and then header_timeout again for its header."""
    with HandDrivenTls(start(3).port, pki) as client:
        hello = client.client_hello()
        client.sock.sendall(hello[: len(hello) // 2])
        time.sleep(2)
        client.sock.sendall(hello[len(hello) // 2 :])
        client.finish_handshake()
        client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = client.seconds_until_closed(6 + SLACK)
        assert closed is not None and closed < 3 + SLACK  # not 2 s + 3 s


def test_a_keep_alive_connection_gets_a_fresh_header_timeout_after_each_answer(start, pki):
    with HandDrivenTls(start(1).port, pki) as client:
        client.handshake()
        for _ in range(3):  # 0.6 s apart: past 1 s since connecting, never 1 s since an answer
            time.sleep(0.6)
            client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.answer().startswith(b"HTTP/1.1 200")
