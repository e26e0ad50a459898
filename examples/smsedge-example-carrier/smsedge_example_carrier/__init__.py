"""An example SMS Edge carrier, shipped as its own pip package.

The upstream it speaks is deliberately small, so that the plugin shows the gateway's contract and
nothing else::

    POST <endpoint>
    Authorization: Bearer <token>
    Content-Type: application/json

    {"template": "SMS_1", "params": {"code": "1234"},
     "messages": [{"to": "+8613800138000", "reference": "<the gateway's message id>"}, ...]}

    200 {"accepted": [{"to": "+8613800138000", "id": "ex-1"}],
         "refused": {"+8613900139000": {"code": "BLOCKED", "message": "opted out"}}}

Each number of a call is either in ``accepted`` (with the upstream's id for it) or in ``refused``.
An HTTP 5xx (or 429, our account throttled) fails the whole call as RETRYABLE: the core tries it
again and then fails over. Any other non-2xx status means our request or our token is wrong, which
no retry fixes: PERMANENT. Timeouts and connection errors are mapped by the gateway's
``gateway.carriers.http.post``, the same way for every carrier.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from gateway.carriers.base import Carrier, CarrierError, FailureKind, Outcome, SendBatch
from gateway.carriers.http import Endpoint, post
from gateway.config.fields import Secret, Then
from gateway.config.model import Settings

__all__ = ["ExampleCarrier", "ExampleOptions"]

log = logging.getLogger(__name__)

REASON_MAX = 200  # characters of an error body kept as the reason


def _bearer_token(token: str) -> str:
    """What an ``Authorization: Bearer`` header can carry as it is."""
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise ValueError("must be printable ASCII without spaces")  # the core adds the key path
    return token


class ExampleOptions(Settings, frozen=True, kw_only=True):
    """Only this plugin's own keys; the core reads plugin/price/timeout/... and refuses the rest."""

    endpoint: Endpoint  # required: an absolute http(s) URL, checked as every carrier's
    token: Annotated[Secret, Then(_bearer_token)]  # a secret: never printed with the options


class ExampleCarrier(Carrier[ExampleOptions]):  # self.options is an ExampleOptions
    name = "example"  # the name of its entry point (pyproject.toml), for logs
    max_batch = 100  # numbers per upstream call; the core splits larger sends
    Options = ExampleOptions

    async def send(self, batch: SendBatch) -> list[Outcome]:
        payload = {
            "template": batch.template_id,
            "params": dict(batch.params),
            "messages": [{"to": r.e164, "reference": r.message_id} for r in batch.recipients],
        }
        # The gateway's shared session and the backend's timeout; a timeout is TIMEOUT (it may
        # have been sent, so the core decides), a connection error RETRYABLE NETWORK_ERROR.
        reply = await post(
            self.session,
            self.options.endpoint,
            data=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {self.options.token}", "Content-Type": "application/json"},
            time_limit=self.backend.timeout,
            allow_redirects=False,  # a redirected POST would come back as a GET
        )
        status, raw = reply.status, reply.body
        log.debug("%s upstream: HTTP %d for %d numbers", self.name, status, len(batch.recipients))
        if status >= 500 or status == 429:
            raise CarrierError(FailureKind.RETRYABLE, f"HTTP_{status}", _reason(raw))
        if not 200 <= status < 300:
            raise CarrierError(FailureKind.PERMANENT, f"HTTP_{status}", _reason(raw))
        return _outcomes(batch, _decode(raw))


def _reason(raw: bytes) -> str:
    return raw[:REASON_MAX].decode("utf-8", "replace").strip() or "no reason given"


def _decode(raw: bytes) -> tuple[dict[str, str | None], Mapping[str, Any]]:
    """``accepted`` as number -> upstream id, and ``refused``; a 2xx of another shape is refused.

    Such an answer is PERMANENT, not RETRYABLE: the upstream may well have sent the messages.
    """
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    accepted = answer.get("accepted", []) if isinstance(answer, dict) else None
    refused = answer.get("refused", {}) if isinstance(answer, dict) else None
    if not isinstance(accepted, list) or not isinstance(refused, dict):
        raise CarrierError(FailureKind.PERMANENT, "BAD_RESPONSE", "not an accepted/refused answer")
    ids = {
        str(item.get("to")): (str(item["id"]) if item.get("id") else None)
        for item in accepted
        if isinstance(item, dict)
    }
    return ids, refused


def _outcomes(batch: SendBatch, answer: tuple[dict[str, str | None], Mapping[str, Any]]) -> list[Outcome]:
    accepted, refused = answer
    outcomes = []
    for recipient in batch.recipients:
        number = recipient.e164
        if number in accepted:
            outcomes.append(Outcome(number, True, carrier_id=accepted[number]))
        elif number in refused:
            why = refused[number] if isinstance(refused[number], dict) else {"message": refused[number]}
            outcomes.append(
                Outcome(
                    number,
                    False,
                    kind=FailureKind.PERMANENT,
                    code=str(why.get("code") or "REFUSED"),
                    message=str(why.get("message") or ""),
                )
            )
        else:
            # Unknown whether it went out: reported as failed, and never retried.
            outcomes.append(
                Outcome(
                    number,
                    False,
                    kind=FailureKind.PERMANENT,
                    code="NO_RESULT",
                    message="the upstream said nothing about this number",
                )
            )
    return outcomes
