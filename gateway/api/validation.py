"""Turning request bodies and query strings into checked values, or a 400 that says why.

The limits here are the API contract's; ``gateway/api/openapi.py`` publishes the same constants, so
the document and the checks cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from gateway.errors import invalid
from gateway.phones import InvalidPhone, Phone, parse_phone, scrub
from gateway.store.base import STATUSES, RecordQuery

__all__ = [
    "MAX_BATCH",
    "MAX_PAGE",
    "MAX_PARAMS",
    "MAX_PARAM_LENGTH",
    "MAX_PARAM_NAME_LENGTH",
    "MAX_PER_PAGE",
    "TEMPLATE_ID_PATTERN",
    "TIME_FORMAT",
    "SendInput",
    "parse_batch",
    "parse_json_object",
    "parse_records_query",
    "parse_send",
]

MAX_BATCH = 100
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000
MAX_PARAMS = 20
MAX_PARAM_LENGTH = 256
MAX_PARAM_NAME_LENGTH = 64
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
PROVIDER_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_TEMPLATE_ID = re.compile(TEMPLATE_ID_PATTERN)
_PROVIDER = re.compile(PROVIDER_PATTERN)
_INTEGER = re.compile(r"[0-9]{1,9}")
SEND_FIELDS = frozenset({"phone", "template_id", "params", "provider"})
BATCH_FIELDS = frozenset({"phones", "template_id", "params", "provider"})


@dataclass(frozen=True, slots=True)
class SendInput:
    phones: list[Phone]
    template_id: str
    params: dict[str, str]
    provider: str | None


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid("请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise invalid("请求体必须是 JSON 对象") from None
    return data


def _check_fields(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise invalid(f"未知参数 {scrub(unknown[0][:32])!r}")


def _template_id(data: Mapping[str, Any]) -> str:
    value = data.get("template_id")
    if value is None:
        raise invalid("缺少 template_id")
    if not isinstance(value, str) or not _TEMPLATE_ID.fullmatch(value):
        raise invalid("template_id 必须是 1-64 位字母、数字、_ . -")
    return value


def _params(data: Mapping[str, Any]) -> dict[str, str]:
    # Absent means none; an explicit null is a wrong type, as the published schema says.
    if "params" not in data:
        return {}
    value = data["params"]
    if not isinstance(value, dict):
        raise invalid("params 必须是对象")
    if len(value) > MAX_PARAMS:
        raise invalid(f"params 最多 {MAX_PARAMS} 个")
    params = {}
    for key, item in value.items():
        if not 1 <= len(key) <= MAX_PARAM_NAME_LENGTH:
            raise invalid(f"params 的键长度必须为 1-{MAX_PARAM_NAME_LENGTH}")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise invalid(f"params.{key} 必须是字符串或数字")
        text = item if isinstance(item, str) else str(item)
        if len(text) > MAX_PARAM_LENGTH:
            raise invalid(f"params.{key} 最长 {MAX_PARAM_LENGTH} 个字符")
        params[key] = text
    return params


def _provider(data: Mapping[str, Any]) -> str | None:
    if "provider" not in data:  # absent: the configured default; null is refused like any non-string
        return None
    value = data["provider"]
    if not isinstance(value, str) or not _PROVIDER.fullmatch(value):
        raise invalid("provider 无效")
    return value


def parse_send(data: Mapping[str, Any]) -> SendInput:
    _check_fields(data, SEND_FIELDS)
    raw = data.get("phone")
    if raw is None:
        raise invalid("缺少 phone")
    try:
        phone = parse_phone(raw)
    except InvalidPhone as exc:
        raise invalid(f"手机号无效:{exc.masked}") from None
    return SendInput([phone], _template_id(data), _params(data), _provider(data))


def parse_batch(data: Mapping[str, Any]) -> SendInput:
    """Every entry is checked before anything is sent; duplicates collapse to one send."""
    _check_fields(data, BATCH_FIELDS)
    raw = data.get("phones")
    if raw is None:
        raise invalid("缺少 phones")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise invalid(f"phones 必须是包含 1-{MAX_BATCH} 个手机号的数组")
    phones: dict[str, Phone] = {}
    bad: list[str] = []
    for entry in raw:
        try:
            phone = parse_phone(entry)
        except InvalidPhone as exc:
            bad.append(exc.masked)
            continue
        phones.setdefault(phone.e164, phone)
    if bad:
        raise invalid(f"手机号无效:{', '.join(bad[:10])}" + (" 等" if len(bad) > 10 else ""))
    return SendInput(list(phones.values()), _template_id(data), _params(data), _provider(data))


def _positive(query: Mapping[str, str], name: str, default: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or not 1 <= int(raw) <= high:
        raise invalid(f"{name} 必须是 1-{high} 的整数")
    return int(raw)


def _instant_ms(query: Mapping[str, str], name: str, zone: ZoneInfo) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        if not _TIME_SHAPE.fullmatch(raw):
            raise ValueError(raw)
        local = datetime.strptime(raw, TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise invalid(f"{name} 格式必须为 YYYY-MM-DD HH:mm:ss") from None
    return int(local.timestamp() * 1000)


def parse_records_query(query: Mapping[str, str], zone: ZoneInfo) -> RecordQuery:
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise invalid("status 必须是 pending / success / failed")
    start_ms = _instant_ms(query, "start_time", zone)
    end_ms = _instant_ms(query, "end_time", zone)
    if end_ms is not None:
        end_ms += 999  # the whole last second is inside an inclusive end
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise invalid("start_time 不能晚于 end_time")
    return RecordQuery(
        page=_positive(query, "page", 1, MAX_PAGE),
        per_page=_positive(query, "per_page", 10, MAX_PER_PAGE),
        status=status,
        start_ms=start_ms,
        end_ms=end_ms,
    )
