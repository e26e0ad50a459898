"""Running the upstream calls of one status pull, shared by the carriers that have a status query.

A pull asks about many records in many small calls; one failed call must not hold up the receipts
the others found (its records wait for the next round), yet a pull where every call failed is the
carrier being down, a CarrierError. Each plugin had its own copy of that rule: this is the one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from gateway.carriers.base import CarrierError, Receipt

__all__ = ["gather_answers"]

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
