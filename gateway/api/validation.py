"""Turning request bodies and query strings into checked values, or a 400 that says why.

A body is decoded once per request, by msgspec straight into its model (``models.py``): one pass,
types and limits checked on the way. A body the model refuses is read again as plain JSON by the
checks below, which say what is wrong in the caller's words. Both ways end in the same checks (the
numbering plan, whole-string patterns), so they accept the same bodies and refuse them alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import msgspec
import orjson
from aiohttp import web

from gateway.api.bodies import MALFORMED, NOT_AN_OBJECT, body_error, refuse_repeated_keys, type_given
from gateway.api.models import (
    MAX_BATCH,
    MAX_PAGE,
    MAX_PARAM_LENGTH,
    MAX_PARAM_NAME_LENGTH,
    MAX_PARAMS,
    MAX_PER_PAGE,
    PROVIDER_PATTERN,
    TEMPLATE_ID_PATTERN,
    BatchRequest,
    RecordsQuery,
    SendRequest,
)
from gateway.errors import invalid
from gateway.phones import InvalidPhone, Phone, parse_phone, scrub
from gateway.sending.model import SendInput
from gateway.store.records import STATUSES, RecordQuery

__all__ = [
    "TIME_FORMAT",
    "batch_input",
    "decoded_body",
    "parse_json_object",
    "parse_records_query",
    "positive_int",
    "send_input",
]

Body = TypeVar("Body", SendRequest, BatchRequest)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_TEMPLATE_ID = re.compile(TEMPLATE_ID_PATTERN)
_PROVIDER = re.compile(PROVIDER_PATTERN)
_INTEGER = re.compile(r"[0-9]{1,9}")
_DECODERS = {model: msgspec.json.Decoder(model) for model in (SendRequest, BatchRequest)}
_QUERY_DEFAULTS = RecordsQuery()
_ABSENT = msgspec.UNSET
_DECODED = web.RequestKey("decoded_body", object)  # the body, decoded by whoever asked first


async def decoded_body(request: web.Request, model: type[Body]) -> Body | dict[str, Any]:
    """The JSON body as ``model`` when it fits, else as a plain object (for the 400's wording);
    a key repeated in it is a 400 either way.

    Decoded once per request: the rate limiter's cost and the handler both ask for it.
    """
    body = cast("Body | dict[str, Any] | None", request.get(_DECODED))  # what is stored below
    if body is None:
        raw = await request.read()
        try:
            # each model's own decoder: a dict keyed by type cannot say so
            body = cast("msgspec.json.Decoder[Body]", _DECODERS[model]).decode(raw)
        except msgspec.ValidationError:
            body = parse_json_object(raw)
        except msgspec.DecodeError as exc:  # not JSON: nothing to read again
            raise body_error(exc) from None
        refuse_repeated_keys(raw, body)
        request[_DECODED] = body
    return body


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid(MALFORMED) from None
    if not isinstance(data, dict):
        raise invalid(NOT_AN_OBJECT) from None
    return data


def send_input(body: SendRequest | Mapping[str, Any]) -> SendInput:
    if isinstance(body, SendRequest):
        return SendInput(
            [_phone(body.phone)],
            _template_id(body.template_id),
            _params(body.params),
            _provider(body.provider),
            callback_url=_callback_url(body.callback_url),
        )
    _check_fields(body, SendRequest)
    if body.get("phone") is None:
        raise invalid("缺少 phone")
    return SendInput(
        [_phone(body["phone"])],
        *_message(body),
        callback_url=_callback_url(body.get("callback_url", _ABSENT)),
    )


def batch_input(body: BatchRequest | Mapping[str, Any]) -> SendInput:
    """Every entry is checked before anything is sent; duplicates collapse to one send."""
    if isinstance(body, BatchRequest):
        return SendInput(
            _phones(body.phones),
            _template_id(body.template_id),
            _params(body.params),
            _provider(body.provider),
            callback_url=_callback_url(body.callback_url),
        )
    _check_fields(body, BatchRequest)
    raw = body.get("phones")
    if raw is None:
        raise invalid("缺少 phones")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        raise invalid(f"phones 必须是包含 1-{MAX_BATCH} 个手机号的数组")
    return SendInput(
        _phones(raw), *_message(body), callback_url=_callback_url(body.get("callback_url", _ABSENT))
    )


def _check_fields(data: Mapping[str, Any], model: type[msgspec.Struct]) -> None:
    unknown = sorted(set(data) - set(model.__struct_fields__))
    if unknown:
        raise invalid(f"未知参数 {scrub(unknown[0][:32])!r}")


def _message(data: Mapping[str, Any]) -> tuple[str, dict[str, str], str | None]:
    # Absent params means none and absent provider the default; an explicit null is a wrong type.
    return (
        _template_id(data.get("template_id")),
        _params(data.get("params", {})),
        _provider(data.get("provider", _ABSENT)),
    )


def _not_text(value: Any) -> str:
    return f"应为字符串,收到{type_given(value)}"


def _phone(raw: Any) -> Phone:
    if not isinstance(raw, str):
        raise invalid(f"手机号无效:phone {_not_text(raw)}")  # never the value: it may be the number
    try:
        return parse_phone(raw)
    except InvalidPhone as exc:
        raise invalid(f"手机号无效:{exc.masked}") from None


def _phones(raw: list[Any]) -> list[Phone]:
    """Every entry parsed; a bad one is named by its place (from 1) and masked, or by its type."""
    phones: dict[str, Phone] = {}
    bad: list[str] = []
    for place, entry in enumerate(raw, 1):
        if not isinstance(entry, str):
            bad.append(f"第 {place} 个 {_not_text(entry)}")
            continue
        try:
            phone = parse_phone(entry)
        except InvalidPhone as exc:
            bad.append(f"第 {place} 个 {exc.masked}")
            continue
        phones.setdefault(phone.e164, phone)
    if bad:
        raise invalid(f"手机号无效:{', '.join(bad[:10])}" + (" 等" if len(bad) > 10 else ""))
    return list(phones.values())


def _template_id(value: Any) -> str:
    if value is None:
        raise invalid("缺少 template_id")
    if not isinstance(value, str) or not _TEMPLATE_ID.fullmatch(value):
        raise invalid("template_id 必须是 1-64 位字母、数字、_ . -")
    return value


def _params(value: Any) -> dict[str, str]:
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


def _provider(value: Any) -> str | None:
    if value is _ABSENT:
        return None
    if not isinstance(value, str) or not _PROVIDER.fullmatch(value):
        raise invalid("provider 无效")
    return value


def _callback_url(value: Any) -> str | None:
    """The send's own callback URL as given; the handler checks it against the account's prefixes."""
    if value is _ABSENT:
        return None
    if not isinstance(value, str) or not value:
        raise invalid("callback_url 须为非空字符串")
    return value


def positive_int(query: Mapping[str, str], name: str, default: int, high: int) -> int:
    """A query parameter that is a whole number 1..high (``default`` when absent), else 400."""
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
    """The query of ``models.RecordsQuery``, checked here to word each 400 (``1e2`` is no page)."""
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
        page=positive_int(query, "page", _QUERY_DEFAULTS.page, MAX_PAGE),
        per_page=positive_int(query, "per_page", _QUERY_DEFAULTS.per_page, MAX_PER_PAGE),
        status=status,
        start_ms=start_ms,
        end_ms=end_ms,
    )
