"""Aliyun's ``SmsReport`` push: ``[{"biz_id", "phone_number", "success", "err_code", "sms_size", ...}]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.carriers.base import MalformedReceipts, ReportFormat, report_e164, report_text

__all__ = ["REPORT", "aliyun_receipts"]

_SUCCESS = {"true": True, "false": False}


def _delivered(report: Mapping[str, Any]) -> bool:
    success = report.get("success")  # documented as a boolean; "true"/"false" tolerated
    if isinstance(success, str):
        success = _SUCCESS.get(success.lower())
    if not isinstance(success, bool):
        raise MalformedReceipts("success is not a boolean")
    return success


def _number(report: Mapping[str, Any]) -> str | None:
    # Mainland numbers come as 11 digits (optionally +86/0086/86), others as country code + number.
    number = report_text(report, "phone_number")
    if number.startswith(("+", "00")):
        return report_e164(number)
    return report_e164(number, f"+{number}")


REPORT = ReportFormat(
    carrier="aliyun",
    carrier_id="biz_id",
    delivered=_delivered,
    number=_number,
    code="err_code",
    default_codes=("DELIVERED", "FAIL"),
    description="err_msg",
    reported_at="report_time",
    segments="sms_size",
)

#: Every report of one push with a valid number, as Receipts (raises MalformedReceipts).
aliyun_receipts = REPORT.receipts
