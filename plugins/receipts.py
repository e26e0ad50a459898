"""Reading the delivery-receipt pushes of Tencent and Aliyun (both: a JSON array of reports).

Structure is checked strictly: a body that is not an array of objects, or a report without its id,
number or status, is :class:`MalformedReceipts` (the gateway answers 400 and changes nothing, so a
format change upstream is noticed rather than silently ignored). A report whose number does not
parse is dropped: no record can match it, since only valid numbers are ever sent.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway.carriers.base import MalformedReceipts, Receipt
from gateway.phones import InvalidPhone, parse_phone

__all__ = ["aliyun_receipts", "tencent_receipts"]

log = logging.getLogger(__name__)

_TENCENT_STATUS = {"SUCCESS": True, "FAIL": False}
_ALIYUN_SUCCESS = {"true": True, "false": False}


def _reports(body: bytes) -> list[dict[str, Any]]:
    try:
        reports = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedReceipts("body is not JSON") from None
    if not isinstance(reports, list) or not all(isinstance(r, dict) for r in reports):
        raise MalformedReceipts("body is not an array of report objects")
    return reports


def _text(report: dict[str, Any], name: str, *, required: bool = True) -> str:
    """A string field; numbers are taken as their digits (a number may come unquoted)."""
    value = report.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedReceipts(f"report field {name!r} missing or not a string")
    return value.strip()


def _e164(*candidates: str) -> str | None:
    """The first candidate form that is a valid number, normalised to E.164."""
    for candidate in candidates:
        try:
            return parse_phone(candidate).e164
        except InvalidPhone:
            continue
    return None


def _tencent_number(report: dict[str, Any]) -> str | None:
    # ``mobile`` has neither ``+`` nor country code; ``nationcode`` carries the latter.
    mobile = _text(report, "mobile")
    nation = _text(report, "nationcode", required=False).lstrip("+") or "86"
    return _e164(mobile if mobile.startswith("+") else f"+{nation}{mobile}")


def tencent_receipts(body: bytes) -> list[Receipt]:
    """Tencent's callback: ``[{"sid", "nationcode", "mobile", "report_status", "errmsg", ...}]``."""
    receipts = []
    for report in _reports(body):
        sid = _text(report, "sid")
        delivered = _TENCENT_STATUS.get(_text(report, "report_status").upper())
        if delivered is None:
            raise MalformedReceipts("report_status is neither SUCCESS nor FAIL")
        e164 = _tencent_number(report)
        if e164 is None:
            log.warning("tencent receipt for an unparsable number dropped (sid %s)", sid)
            continue
        receipts.append(Receipt(
            carrier_id=sid, e164=e164, delivered=delivered,
            code=_text(report, "errmsg", required=False) or ("DELIVRD" if delivered else "FAIL"),
            description=_text(report, "description", required=False),
            reported_at=_text(report, "user_receive_time", required=False) or None,
        ))
    return receipts


def _aliyun_number(report: dict[str, Any]) -> str | None:
    # Mainland numbers come as 11 digits (optionally +86/0086/86), others as country code + number.
    number = _text(report, "phone_number")
    if number.startswith(("+", "00")):
        return _e164(number)
    return _e164(number, f"+{number}")


def aliyun_receipts(body: bytes) -> list[Receipt]:
    """Aliyun's SmsReport push: ``[{"biz_id", "phone_number", "success", "err_code", ...}]``."""
    receipts = []
    for report in _reports(body):
        biz_id = _text(report, "biz_id")
        success = report.get("success")  # documented as a boolean; "true"/"false" tolerated
        delivered = success if isinstance(success, bool) else (
            _ALIYUN_SUCCESS.get(success.lower()) if isinstance(success, str) else None
        )
        if delivered is None:
            raise MalformedReceipts("success is not a boolean")
        e164 = _aliyun_number(report)
        if e164 is None:
            log.warning("aliyun receipt for an unparsable number dropped (biz_id %s)", biz_id)
            continue
        receipts.append(Receipt(
            carrier_id=biz_id, e164=e164, delivered=delivered,
            code=_text(report, "err_code", required=False) or ("DELIVERED" if delivered else "FAIL"),
            description=_text(report, "err_msg", required=False),
            reported_at=_text(report, "report_time", required=False) or None,
        ))
    return receipts
