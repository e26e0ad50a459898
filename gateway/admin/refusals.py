"""The account rules' refusals in the API's language, naming the field.

The rules (``gateway.accounts.rules``) word what they refuse in English, for the CLI that prints
it; the admin API answers in Chinese like the rest of the API, so each check it runs is named by its
field here and a refusal says what that field must be.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from gateway.accounts.rules import (
    MAX_BURST,
    MAX_NAME_LENGTH,
    MAX_RATE,
    MAX_REASON_LENGTH,
    MIN_RATE,
    Invalid,
    check_providers,
)
from gateway.errors import invalid
from gateway.money import MAX_YUAN

__all__ = ["checked", "checked_providers", "refusal"]

T = TypeVar("T")

#: What each checked field must be.
_MUST = {
    "name": f"须为 1-{MAX_NAME_LENGTH} 个字符(去掉首尾空白后),不能含控制字符、格式字符或 7 位以上的连续数字",
    "balance": f"须为 0-{MAX_YUAN} 元,最多 3 位小数",
    "amount": f"须为大于 0 的金额(元),不超过 {MAX_YUAN},最多 3 位小数",
    "ratelimit": f"须为 rate {MIN_RATE}-{MAX_RATE:.0f}、burst 1-{MAX_BURST} 的整数",
    "reason": f"须为 1-{MAX_REASON_LENGTH} 个字符,且不能只有空白",
}
#: A rule's refusal from deeper than a handler's own checks, where the field is not known.
_SOME_FIELD = "账户参数无效"


def checked(field: str, check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``check(*args, **kwargs)``; what it refuses is a 400 saying what ``field`` must be."""
    try:
        return check(*args, **kwargs)
    except Invalid:
        raise invalid(f"{field} {_MUST[field]}") from None


def refusal(exc: Invalid) -> str:
    """What a rule refused deeper than a handler's own checks (the account service's), in the
    API's language: the field's requirement when the rule named its field."""
    return f"{exc.field} {_MUST[exc.field]}" if exc.field in _MUST else _SOME_FIELD


def checked_providers(values: Iterable[object], known: Collection[str]) -> tuple[str, ...]:
    try:
        return check_providers(values, known)
    except Invalid:
        raise invalid(f"providers 只能列出已配置的服务商({', '.join(sorted(known))}),每个一次") from None
