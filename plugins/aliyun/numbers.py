"""How Aliyun spells a number, in ``SendSms`` as in ``QuerySendDetails``: one place for both."""

from __future__ import annotations

__all__ = ["aliyun_number"]


def aliyun_number(e164: str) -> str:
    """Mainland numbers as 11 digits, others as country code + number without ``+``."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")
