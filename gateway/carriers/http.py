"""The one place that posts to a carrier: the shared session, the backend's timeout, transport faults.

A plugin builds its request and reads the carrier's answer; what lies between is here, so that every
carrier names the same trouble the same way: ``TIMEOUT``, ``NETWORK_ERROR``, ``HTTP_<status>``,
``BAD_RESPONSE`` (docs/carriers.md, "Failures the plugins name themselves").
:data:`Endpoint` is how a carrier declares its ``endpoint`` option, with the one check of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from yarl import URL

from gateway.carriers.base import CarrierError, FailureKind
from gateway.config.fields import From

__all__ = ["Endpoint", "Reply", "endpoint_url", "post"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A carrier's whole answer, read before the connection went back to the pool."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def expect_status(self, expected: int = 200) -> None:
        """Refuse any other status as transport trouble: ``RETRYABLE HTTP_<status>``."""
        if self.status != expected:
            raise CarrierError(FailureKind.RETRYABLE, f"HTTP_{self.status}", "unexpected HTTP status")

    def json(self) -> Any:
        """The decoded body; a body that is not JSON fails the call as ``RETRYABLE``."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise self.malformed() from exc

    def json_object(self) -> dict[str, Any]:
        """The decoded body when it is a JSON object; anything else fails the call as ``RETRYABLE``."""
        data = self.json()
        if not isinstance(data, dict):
            raise self.malformed()
        return data

    def malformed(self) -> CarrierError:
        code = "BAD_RESPONSE" if self.status == 200 else f"HTTP_{self.status}"
        return CarrierError(FailureKind.RETRYABLE, code, "malformed JSON")


async def post(
    session: aiohttp.ClientSession,
    url: URL,
    *,
    time_limit: float,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    allow_redirects: bool = True,
) -> Reply:
    """POST ``data`` over the gateway's shared session and read the whole answer.

    ``time_limit`` is the backend's ``timeout``: the whole call, connecting included. Whatever
    the status, the answer is the plugin's to read; only transport failures raise CarrierError.
    """
    try:
        async with session.post(
            url,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=time_limit),
            allow_redirects=allow_redirects,
        ) as response:
            return Reply(response.status, response.headers, await response.read())
    except TimeoutError as exc:
        raise CarrierError(FailureKind.TIMEOUT, "TIMEOUT", f"no answer within {time_limit:g}s") from exc
    except aiohttp.ClientError as exc:
        raise CarrierError(FailureKind.RETRYABLE, "NETWORK_ERROR", repr(exc)) from exc


def endpoint_url(text: Any) -> URL:
    """An absolute http(s) URL without credentials or query: its host is what requests are signed for.

    Credentials in the URL would go out as a Basic ``Authorization`` header beside the carrier's own
    signature, and a query would be signed by some carriers and not by others: both are refused.
    """
    try:
        url = URL(text) if isinstance(text, str) else URL()
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host or url.user or url.query_string:
        raise ValueError("must be an absolute http(s) URL without credentials or query")
    return url


#: A carrier's ``endpoint`` option: ``endpoint: Endpoint = URL("https://sms.example.com")``.
Endpoint = Annotated[URL, From(endpoint_url)]
