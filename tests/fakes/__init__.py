"""Fake carrier upstreams: small aiohttp apps that check requests the way the real carrier does.

Each carrier module builds a ``web.Application`` from an upstream state object (an
:class:`Upstream`); tests start it with ``aiohttp_server`` and switch faults on that object. What
is shared lives here: the recorded request, the switches and the transport faults every carrier can
show, and the messages a fake accepted with the final word each has (or not yet), from which its
status queries and receipt pushes are answered. ``tests.fakes.cases`` holds every carrier with its
fake, for the contract suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from gateway.carriers.base import Carrier, CarrierError, SendBatch

__all__ = ["Fault", "Received", "Report", "Sent", "Upstream", "backend_config", "refused", "transport_fault"]


def backend_config(
    plugin: str, endpoint: str, credentials: Mapping[str, str], **options: Any
) -> dict[str, Any]:
    """A backend of the gateway's config that sends to a fake at ``endpoint`` with the ``credentials``
    it accepts (its module's ``CREDENTIALS``); ``options`` (price, timeout, retries ...) are the test's."""
    return {"plugin": plugin, "endpoint": endpoint, **credentials, "sign_name": "SMS Edge", **options}


class Fault(enum.Enum):
    """Ways the transport misbehaves, independent of the carrier's own error codes."""

    HTTP_500 = "http_500"  # an HTML error page from a proxy or load balancer
    SLOW = "slow"  # answers, but only after ``delay`` seconds
    RESET = "reset"  # the connection is reset before any answer
    MALFORMED_JSON = "malformed_json"  # 200 with a truncated JSON body


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the fake saw it, for assertions."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes

    @classmethod
    def of(cls, request: web.Request, body: bytes) -> Received:
        return cls(request.method, request.path, dict(request.query), CIMultiDict(request.headers), body)

    def json(self) -> Any:
        return orjson.loads(self.body)


def _reset(request: web.Request) -> None:
    """Close with RST (linger 0), as a crashed upstream or a middlebox does."""
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _sleep_while_connected(request: web.Request, delay: float) -> None:
    """Wait ``delay`` seconds, but stop early once the client gave up (keeps teardown quick)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.01)


async def transport_fault(
    request: web.Request, fault: Fault | None, delay: float
) -> web.StreamResponse | None:
    """The answer a transport fault gives, or None to answer normally (possibly late)."""
    if fault is Fault.HTTP_500:
        return web.Response(
            status=500, text="<html><body>500 Internal Server Error</body></html>", content_type="text/html"
        )
    if fault is Fault.MALFORMED_JSON:
        truncated = b'{"Response": {"SendStatusSet": [{"SerialNo": "2433:'
        return web.Response(body=truncated, content_type="application/json")
    if fault is Fault.RESET:
        _reset(request)
        raise web.HTTPInternalServerError()  # never reaches the client: the socket is gone
    if fault is Fault.SLOW:
        await _sleep_while_connected(request, delay)
    return None


@dataclass(frozen=True, slots=True)
class Report:
    """The final word the handset's operator gave about one message."""

    delivered: bool
    code: str = ""  # the operator's code (MK:0001, UNDELIV ...); empty: the carrier's usual word


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a fake accepted: what its status queries and pushes are computed from."""

    carrier_id: str  # the id the fake answered (Tencent SerialNo, Aliyun BizId)
    e164: str
    at: float  # the fake's clock when it accepted the message
    echo: Mapping[str, str] = field(default_factory=dict)  # fields its reports repeat (OutId ...)


@dataclass
class Upstream:
    """A fake's state: its clock, switchable faults, every request it received, and every message it
    accepted with the final word on each (``reports`` per message, else ``default_report``)."""

    clock: Callable[[], float] = time.time  # the upstream's "now", to check request timestamps
    fault: Fault | None = None
    delay: float = 5.0  # seconds, for Fault.SLOW
    error_code: str | None = None  # answer every (signed) call with this error code
    number_codes: dict[str, str] = field(default_factory=dict)  # E.164 -> the code for that number
    requests: list[Received] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    reports: dict[tuple[str, str], Report] = field(default_factory=dict)  # (carrier_id, E.164) -> ...
    default_report: Report | None = None  # ... and for the others; None: no answer yet
    busy: int = 0  # requests being answered now ...
    peak: int = 0  # ... and the most at once, to check a client's bound on concurrent calls

    def report_of(self, message: Sent) -> Report | None:
        return self.reports.get((message.carrier_id, message.e164), self.default_report)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the whole answer to one request: counts the requests in hand."""
        self.busy += 1
        self.peak = max(self.peak, self.busy)
        try:
            yield
        finally:
            self.busy -= 1

    async def receive(self, request: web.Request) -> tuple[bytes, web.StreamResponse | None]:
        """Record the request; its body, and the answer of a switched-on transport fault if any."""
        body = await request.read()
        self.requests.append(Received.of(request, body))
        return body, await transport_fault(request, self.fault, self.delay)


async def refused(carrier: Carrier, batch: SendBatch) -> CarrierError:
    """The CarrierError a plugin raises for ``batch`` (the test fails if it raises none)."""
    with pytest.raises(CarrierError) as caught:
        await carrier.send(batch)
    return caught.value
