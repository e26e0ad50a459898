"""Aliyun's ``SmsReport`` push: ``[{"biz_id", "phone_number", "success", "err_code", "sms_size", ...}]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gateway.carriers.base import MalformedReceipts, Receipt, ReportFormat, report_e164, report_text

__all__ = ["REPORT", "aliyun_receipts", "whole_number"]

_SUCCESS = {"true": True, "false": False}


def whole_number(value: Any) -> int | None:
    """A count Aliyun writes as a string of digits (``"1"``) or as a number; None for anything else."""
    if isinstance(value, str):
        digits = value.strip()
        return int(digits) if digits.isascii() and digits.isdigit() else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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


class _SmsReport(ReportFormat):
    """The shared reading plus ``sms_size``, the segments billed: a bad one says nothing, it is no
    reason to refuse the push."""

    def _receipt(self, report: Mapping[str, Any]) -> Receipt | None:
        receipt = super()._receipt(report)
        size = whole_number(report.get("sms_size"))
        if receipt is None or size is None or size < 1:
            return receipt
        return replace(receipt, segments=size)


REPORT = _SmsReport(
    carrier="aliyun",
    carrier_id="biz_id",
    delivered=_delivered,
    number=_number,
    code="err_code",
    default_codes=("DELIVERED", "FAIL"),
    description="err_msg",
    reported_at="report_time",
)

#: Every report of one push with a valid number, as Receipts (raises MalformedReceipts).
aliyun_receipts = REPORT.receipts
