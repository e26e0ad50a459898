"""What an account's fields may be: the checks the ``accounts`` CLI and the admin API share.

Each check takes the value as given (command-line text or decoded JSON) and returns it in the
form the store keeps, or raises :class:`Invalid` saying what is wrong, in English (the CLI prints
it; the API answers 400 ``INVALID_PARAMS`` with it).

Amounts are numbers read exactly: the admin API decodes JSON numbers as ``Decimal``, the CLI reads
its text with :func:`yuan_text`, so ``1.00000000000000001`` is refused (more than 3 decimals), never
rounded to 1 on the way in.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from decimal import Decimal, InvalidOperation
from typing import cast

from gateway.accounts.names import MAX_NAME_LENGTH, checked_name
from gateway.config.model import BucketConfig
from gateway.money import yuan_to_milli

__all__ = [
    "MAX_BURST",
    "MAX_LIMIT",
    "MAX_NAME_LENGTH",
    "MAX_RATE",
    "MAX_REASON_LENGTH",
    "MIN_RATE",
    "Invalid",
    "check_amount",
    "check_bucket",
    "check_burst",
    "check_limit",
    "check_name",
    "check_providers",
    "check_rate",
    "check_reason",
    "yuan_text",
]

MIN_RATE, MAX_RATE, MAX_BURST = 0.001, 1e6, 10**9  # as ratelimit.account in the config
MAX_REASON_LENGTH = 200
MAX_LIMIT = 10**9  # messages a day or a month (daily_limit, monthly_limit)


class Invalid(ValueError):
    """A value an account may not have; its text says why, ``field`` which one when the rule
    knows it (the admin API then answers in its own language, ``refusals``)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def check_name(value: object) -> str:
    """Trimmed; what a name may hold is ``gateway.accounts.names``'s (the config's names too)."""
    if not isinstance(value, str):
        raise Invalid(f"a name of 1-{MAX_NAME_LENGTH} characters", field="name")
    try:
        return checked_name(value)
    except ValueError as exc:
        raise Invalid(f"name: {exc}", field="name") from None


def yuan_text(text: str) -> Decimal:
    """An amount as the command line gives it, read exactly (then checked as any other)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise Invalid(f"{text[:32]!r}: must be an amount in yuan") from None


def check_amount(value: object) -> int:
    """Yuan, a number read exactly (at most 3 decimals), as milli-yuan."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise Invalid(f"{str(value)[:32]!r}: must be a number of yuan")
    try:
        return yuan_to_milli(value)
    except ValueError as exc:
        raise Invalid(f"{str(value)[:32]!r}: {exc}") from None


def check_rate(value: object) -> float:
    # float() takes "nan" and "inf", which would silently mean "no limit": only real rates pass.
    try:
        rate = float(value) if not isinstance(value, bool) else math.nan  # type: ignore[arg-type]  # TypeError caught
    except (TypeError, ValueError):
        rate = math.nan
    if not MIN_RATE <= rate <= MAX_RATE:
        raise Invalid(f"{str(value)[:32]!r}: tokens per second, {MIN_RATE}-{MAX_RATE:g}")
    return rate


def check_burst(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BURST:
        raise Invalid(f"burst must be 1-{MAX_BURST:,}")
    return value


def check_limit(value: object) -> int | None:
    """A daily or monthly limit: a whole number of messages, 1 or more; None (or the CLI's
    ``none``): no cap."""
    if value is None or value == "none":
        return None
    if isinstance(value, str) and value.isdigit():  # the command line's text (digits only)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise Invalid(f"{str(value)[:32]!r}: a limit is 1-{MAX_LIMIT:,} messages, or none")
    return value


def check_bucket(rate: object, burst: object) -> BucketConfig:
    return BucketConfig(rate=check_rate(rate), burst=check_burst(burst))


def check_providers(values: Iterable[object], known: Collection[str]) -> tuple[str, ...]:
    """Configured backend names, each once (none: every provider)."""
    providers = tuple(values)
    for name in providers:
        if not isinstance(name, str) or name not in known:
            raise Invalid(f"unknown provider {str(name)[:32]!r}; configured: {', '.join(sorted(known))}")
    if len(set(providers)) != len(providers):
        raise Invalid("a provider is listed twice")
    return cast("tuple[str, ...]", providers)  # each checked to be a str above


def check_reason(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REASON_LENGTH:
        raise Invalid(f"a reason of 1-{MAX_REASON_LENGTH} characters", field="reason")
    return value
