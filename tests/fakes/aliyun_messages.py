"""What the fake Aliyun upstream knows of the messages it took: how Aliyun spells a number, the
``QuerySendDetails`` answer and the ``SmsReport`` push, both computed from those messages and the
final word each has (``Upstream.reports``), never written out by hand.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tests.fakes import Sent

if TYPE_CHECKING:
    from tests.fakes.aliyun import AliyunUpstream

__all__ = ["check_query", "query_details", "sms_reports", "to_e164"]

CHINA = ZoneInfo("Asia/Shanghai")  # SendDate and the report times are China's
QUERY_DAYS = 30  # QuerySendDetails answers for send dates of the last 30 days
QUERY_PAGE_MAX = 50
_MAINLAND = re.compile(r"(?:\+86|0086|86)?(1[0-9]{10})")
_ABROAD = re.compile(r"[1-9][0-9]{6,14}")


def to_e164(number: str) -> str | None:
    """A PhoneNumbers entry as E.164, or None when Aliyun would call it illegal."""
    if match := _MAINLAND.fullmatch(number):
        return "+86" + match[1]
    return "+" + number if _ABROAD.fullmatch(number) else None


def _china(epoch: float, spelled: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(epoch, CHINA).strftime(spelled)


def check_query(params: dict[str, str], up: AliyunUpstream) -> str | None:
    """The Code a QuerySendDetails with these parameters fails with, or None."""
    for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
        if not params.get(name):
            return f"Missing{name}"
    if to_e164(params["PhoneNumber"]) is None:
        return "isv.MOBILE_NUMBER_ILLEGAL"
    size, page = params["PageSize"], params["CurrentPage"]
    if not (size.isdigit() and 1 <= int(size) <= QUERY_PAGE_MAX and page.isdigit() and int(page) >= 1):
        return "isv.INVALID_PARAMETERS"
    try:
        day = datetime.strptime(params["SendDate"], "%Y%m%d").date()
    except ValueError:
        return "isv.INVALID_PARAMETERS"
    age = (datetime.fromtimestamp(up.clock(), CHINA).date() - day).days
    if not 0 <= age < QUERY_DAYS:
        return "isv.INVALID_PARAMETERS"
    return up.number_codes.get(str(to_e164(params["PhoneNumber"])))


def _detail(message: Sent, up: AliyunUpstream) -> dict[str, Any]:
    report = up.report_of(message)
    detail = {
        "PhoneNum": message.echo["PhoneNum"],
        "SendStatus": 1 if report is None else 3 if report.delivered else 2,
        "ErrCode": "",
        "TemplateCode": message.echo["TemplateCode"],
        "SendDate": _china(message.at),
        "OutId": message.echo["OutId"],
    }
    if report is not None:
        detail["ErrCode"] = report.code or ("DELIVERED" if report.delivered else "UNDELIV")
        detail["ReceiveDate"] = _china(message.at + 4)
    return detail


def query_details(params: dict[str, str], up: AliyunUpstream) -> dict[str, Any]:
    """The number's messages of that China date (of that BizId if given), one page of them."""
    phone, biz_id = to_e164(params["PhoneNumber"]), params.get("BizId")
    matching = [
        message
        for message in up.sent
        if message.e164 == phone
        and _china(message.at, "%Y%m%d") == params["SendDate"]
        and biz_id in (None, message.carrier_id)
    ]
    size, page = int(params["PageSize"]), int(params["CurrentPage"])
    shown = matching[(page - 1) * size : page * size]
    return {
        "Code": "OK",
        "Message": "OK",
        "TotalCount": str(len(matching)),
        "SmsSendDetailDTOs": {"SmsSendDetailDTO": [_detail(message, up) for message in shown]},
    }


def sms_reports(up: AliyunUpstream) -> list[dict[str, Any]]:
    """The ``SmsReport`` push Aliyun would make now: one report per message with a final word."""
    reports = []
    for message in up.sent:
        if (report := up.report_of(message)) is None:
            continue
        pushed = {
            "phone_number": message.echo["PhoneNum"],
            "send_time": _china(message.at),
            "report_time": _china(message.at + 4),
            "success": report.delivered,
            "err_code": report.code or ("DELIVERED" if report.delivered else "UNDELIV"),
            "err_msg": "用户接收成功" if report.delivered else "用户关机",
            "sms_size": up.sms_sizes.get(message.e164, up.sms_size),
            "biz_id": message.carrier_id,
            "out_id": message.echo["OutId"],
        }
        reports.append({k: v for k, v in pushed.items() if k != "sms_size" or v is not None})
    return reports
