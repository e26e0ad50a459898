"""Running the upstream calls of one status pull, shared by the carriers that have a status query.

A pull asks about many records in many small calls; one failed call must not hold up the receipts
the others found (its records wait for the next round), yet a pull where every call failed is the
carrier being down, a CarrierError. Each plugin had its own copy of that rule: this is the one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from gateway.carriers.base import CarrierError, Receipt, ReportFormat, StatusQuery, report_text

__all__ = ["answered", "gather_answers"]

log = logging.getLogger(__name__)


async def gather_answers(
    calls: Sequence[Callable[[], Awaitable[list[Receipt]]]], concurrency: int, carrier: str, action: str
) -> list[Receipt]:
    """The receipts of every call that worked, running at most ``concurrency`` calls at once.

    Each call is started when a slot is free and holds it until done, so a call that asks upstream
    several times must do so one after another for the bound to hold. A call that fails with
    :class:`CarrierError` leaves its records waiting; only when every call failed is the first such
    error raised. Any other exception is raised once all are done. The warning for some failures
    names the carrier, the action, the counts and the first code: never a number.
    """
    slots = asyncio.Semaphore(concurrency)

    async def bounded(call: Callable[[], Awaitable[list[Receipt]]]) -> list[Receipt]:
        async with slots:
            return await call()

    results = await asyncio.gather(*(bounded(call) for call in calls), return_exceptions=True)
    failures: list[CarrierError] = []
    for result in results:
        if isinstance(result, CarrierError):
            failures.append(result)
        elif isinstance(result, BaseException):
            raise result
    if failures and len(failures) == len(results):
        raise failures[0]
    if failures:
        log.warning(
            "%s %s: %d of %d calls not answered, their records wait (%s)",
            carrier,
            action,
            len(failures),
            len(results),
            failures[0].code,
        )
    return [receipt for result in results if isinstance(result, list) for receipt in result]


def answered(
    query: StatusQuery,
    delivered: bool | None,
    answer: Mapping[str, Any],
    code: str,
    at: str,
    push: ReportFormat,
) -> Receipt | None:
    """The Receipt one answer of a status query gives, read as the carrier's push (``push``) reads:
    its ``code`` field, else the push's default word. None: no final word yet."""
    if delivered is None:
        return None
    return Receipt(
        carrier_id=query.carrier_id,
        e164=query.e164,
        delivered=delivered,
        code=report_text(answer, code, required=False) or push.default_codes[0 if delivered else 1],
        reported_at=report_text(answer, at, required=False) or None,
    )
