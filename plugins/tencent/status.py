"""Tencent's status query, ``PullSmsSendStatusByPhoneNumber`` 2021-01-11: the receipts that never came.

One number per call, 100 reports per answer at most, reports of the last 7 days only, and ``Offset``
"fixed at 0" (API reference 382/52067): an answer that fills ``Limit`` cannot be paged by offset, so
its time range is asked again in two halves. Reports are matched to records by ``SerialNo``. A number
whose call failed waits for the next round; only when every number failed is the pull a CarrierError.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from gateway.carriers.base import CarrierError, FailureKind, Receipt, StatusQuery, report_text
from gateway.carriers.pulling import answered, gather_answers
from plugins.tencent.receipts import REPORT, STATUSES

__all__ = ["CONCURRENCY", "LIMIT", "PULL_ACTION", "WINDOW", "pull"]

log = logging.getLogger(__name__)

PULL_ACTION = "PullSmsSendStatusByPhoneNumber"
LIMIT = 100  # reports per answer: Tencent's maximum
WINDOW = 7 * 86400 - 600  # seconds back Tencent answers for (7 days), less ten minutes for clocks apart
LEAD = 60  # seconds: a record is written just before its send, and Tencent's clock may be behind ours
CONCURRENCY = 5  # calls at once: the action takes 20 a second per account

#: Posts one signed PullSmsSendStatusByPhoneNumber; its ``Response`` object.
Call = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def pull(call: Call, app_id: str, queries: Sequence[StatusQuery], now: int) -> list[Receipt]:
    """A Receipt for each query Tencent has a final report for; records too old to ask are left out."""
    by_number: dict[str, list[StatusQuery]] = {}
    for query in queries:
        if query.sent_ms // 1000 >= now - WINDOW:
            by_number.setdefault(query.e164, []).append(query)
    calls = [partial(_number, call, app_id, phone, asked, now) for phone, asked in by_number.items()]
    return await gather_answers(calls, CONCURRENCY, "tencent", PULL_ACTION)


async def _number(call: Call, app_id: str, phone: str, queries: list[StatusQuery], now: int) -> list[Receipt]:
    """One number's receipts, from its reports since the earliest of its records."""
    begin = max(min(query.sent_ms for query in queries) // 1000 - LEAD, now - WINDOW)
    asked = {"PhoneNumber": phone, "SmsSdkAppId": app_id}
    wanted = {query.carrier_id: query for query in queries}
    found: dict[str, Receipt] = {}  # by SerialNo: halved ranges share their middle second
    for status in await _statuses(call, asked, begin, now):
        query = wanted.get(report_text(status, "SerialNo", required=False))
        if query is not None and (receipt := _receipt(status, query)) is not None:
            found[query.carrier_id] = receipt
    return list(found.values())


async def _statuses(call: Call, asked: dict[str, str], begin: int, end: int) -> list[dict[str, Any]]:
    """Every report of the number from ``begin`` to ``end``, asking again by halves while it is full."""
    response = await call({"BeginTime": begin, "EndTime": end, "Offset": 0, "Limit": LIMIT, **asked})
    page = response.get("PullSmsSendStatusSet") or []  # the SDK reads a missing set as an empty one
    if not isinstance(page, list):
        raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "PullSmsSendStatusSet is not a list")
    reports = [report for report in page if isinstance(report, dict)]
    if len(page) < LIMIT:
        return reports
    if end - begin < 2:
        log.warning("tencent %s: %d reports of one number within a second", PULL_ACTION, len(page))
        return reports
    middle = (begin + end) // 2
    earlier = await _statuses(call, asked, begin, middle)
    return [*reports, *earlier, *await _statuses(call, asked, middle, end)]


def _receipt(status: dict[str, Any], query: StatusQuery) -> Receipt | None:
    """As a pushed report reads: ``Description`` holds the operator's code (DELIVRD), as ``errmsg`` does."""
    delivered = STATUSES.get(report_text(status, "ReportStatus", required=False).upper())
    return answered(query, delivered, status, "Description", "UserReceiveTime", REPORT)
