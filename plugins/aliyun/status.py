"""Aliyun's status query, ``QuerySendDetails`` (Dysmsapi 2017-05-25): the receipts that never came.

A detail names no BizId, so each record is asked for by its number, BizId and send date: a China date
of the last 30 days, and the next one too when the record was written in the last minute before
midnight. ``SendStatus`` 3 is delivered, 2 failed, 1 waiting (left out). A BizId holds one detail per
time its call listed the number, paged by ``PageSize``/``CurrentPage``. A record whose call failed
waits for the next round; only when every one failed is the pull a CarrierError.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from gateway.carriers.base import CarrierError, FailureKind, Receipt, StatusQuery, whole_number
from gateway.carriers.pulling import answered, gather_answers
from plugins.aliyun.numbers import aliyun_number
from plugins.aliyun.receipts import REPORT

__all__ = ["CONCURRENCY", "DAYS", "PAGE_SIZE", "QUERY_ACTION", "pull"]

QUERY_ACTION = "QuerySendDetails"
PAGE_SIZE = 50  # details per page: Aliyun's maximum
MAX_PAGES = 20  # a call lists at most 1000 numbers: a BizId and number never fill more
DAYS = 30  # send dates Aliyun answers for, today's included
LEAD_MS = 60_000  # a record is written just before its send: Aliyun may date it a minute later
CONCURRENCY = 10  # calls at once, well under the action's 5000 a second
CHINA = ZoneInfo("Asia/Shanghai")  # SendDate is a date in China
SEND_STATUS = {3: True, 2: False}  # 1: no receipt yet

#: Posts one signed QuerySendDetails; its answer when ``Code`` is ``OK`` (else CarrierError).
Call = Callable[[dict[str, str]], Awaitable[dict[str, Any]]]


async def pull(call: Call, queries: Sequence[StatusQuery], now: float) -> list[Receipt]:
    """A Receipt for each query Aliyun has a final word on; records too old to ask are left out."""
    same: dict[tuple[str, str], list[StatusQuery]] = {}
    for query in queries:
        same.setdefault((query.carrier_id, query.e164), []).append(query)
    calls = [partial(_message, call, asked, now) for asked in same.values()]
    return await gather_answers(calls, CONCURRENCY, "aliyun", QUERY_ACTION)


async def _message(call: Call, queries: list[StatusQuery], now: float) -> list[Receipt]:
    """The receipts of one BizId and number, one per record asked about at most."""
    first = queries[0]
    asked = {"PhoneNumber": aliyun_number(first.e164), "BizId": first.carrier_id}
    for date in _dates(min(query.sent_ms for query in queries), now):
        details = await _details(call, {**asked, "SendDate": date})
        if details:
            receipts = [r for detail in details if (r := _receipt(detail, first)) is not None]
            return receipts[: len(queries)]
    return []


def _dates(sent_ms: int, now: float) -> list[str]:
    """The China dates Aliyun may have filed the message under, of those it still answers for."""
    today = datetime.fromtimestamp(now, CHINA).date()
    days = {datetime.fromtimestamp(ms / 1000, CHINA).date() for ms in (sent_ms, sent_ms + LEAD_MS)}
    return [day.strftime("%Y%m%d") for day in sorted(days) if 0 <= (today - day).days < DAYS]


async def _details(call: Call, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every detail the query matches, page after page."""
    details: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        data = await call({**params, "PageSize": str(PAGE_SIZE), "CurrentPage": str(page)})
        found = _page(data)
        details += found
        total = whole_number(data.get("TotalCount"))
        if len(found) < PAGE_SIZE or (total is not None and len(details) >= total):
            break
    return details


def _page(data: dict[str, Any]) -> list[dict[str, Any]]:
    box = data.get("SmsSendDetailDTOs") or {}
    found = box.get("SmsSendDetailDTO", []) if isinstance(box, dict) else None
    if not isinstance(found, list):
        raise CarrierError(FailureKind.RETRYABLE, "BAD_RESPONSE", "SmsSendDetailDTOs is not a list")
    return [detail for detail in found if isinstance(detail, dict)]


def _receipt(detail: dict[str, Any], query: StatusQuery) -> Receipt | None:
    """As a pushed report reads: ``ErrCode`` is the push's ``err_code`` (DELIVERED, or the failure)."""
    status = whole_number(detail.get("SendStatus"))
    delivered = None if status is None else SEND_STATUS.get(status)
    return answered(query, delivered, detail, "ErrCode", "ReceiveDate", REPORT)
