"""Tencent's delivery-report push: ``[{"sid", "nationcode", "mobile", "report_status", ...}]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.carriers.base import MalformedReceipts, ReportFormat, report_e164, report_text

__all__ = ["REPORT", "STATUSES", "tencent_receipts"]

#: A report's status, pushed (``report_status``) or pulled (``ReportStatus``): delivered or not.
STATUSES = {"SUCCESS": True, "FAIL": False}


def _delivered(report: Mapping[str, Any]) -> bool:
    delivered = STATUSES.get(report_text(report, "report_status").upper())
    if delivered is None:
        raise MalformedReceipts("report_status is neither SUCCESS nor FAIL")
    return delivered


def _number(report: Mapping[str, Any]) -> str | None:
    # ``mobile`` has neither ``+`` nor country code; ``nationcode`` carries the latter.
    mobile = report_text(report, "mobile")
    nation = report_text(report, "nationcode", required=False).lstrip("+") or "86"
    return report_e164(mobile if mobile.startswith("+") else f"+{nation}{mobile}")


REPORT = ReportFormat(
    carrier="tencent",
    carrier_id="sid",
    delivered=_delivered,
    number=_number,
    code="errmsg",
    default_codes=("DELIVRD", "FAIL"),
    description="description",
    reported_at="user_receive_time",
)

#: Every report of one push with a valid number, as Receipts (raises MalformedReceipts).
tencent_receipts = REPORT.receipts
