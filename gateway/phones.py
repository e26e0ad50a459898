"""Phone numbers: parsing and normalising with a real numbering plan, and the one masking rule.

Only :class:`Phone` ever carries a full number, and only on its way to a carrier; everything that is
shown, logged or stored uses :func:`mask_phone` / ``Phone.masked``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

__all__ = [
    "DEFAULT_REGION", "PHONE_PATTERN", "SAFE_KEYS", "InvalidPhone", "Phone", "mask_digits",
    "mask_payload", "mask_phone", "parse_phone", "scrub",
]

DEFAULT_REGION = "CN"
#: What a phone field may look like before the numbering plan is asked (published in OpenAPI too).
PHONE_PATTERN = r"^ *\+?[0-9][0-9 \-]{4,30} *$"
_SHAPE = re.compile(PHONE_PATTERN)
_SEPARATORS = str.maketrans("", "", " -")
_SMS_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_HOME_CODE = phonenumbers.country_code_for_region(DEFAULT_REGION)


class InvalidPhone(ValueError):
    """Not a number an SMS can be sent to; ``masked`` is safe to show."""

    def __init__(self, raw: object) -> None:
        self.masked = mask_digits(raw if isinstance(raw, str) else "")
        super().__init__(f"invalid phone number {self.masked}")


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    masked: str


def parse_phone(raw: object) -> Phone:
    """``13800138000``, ``+8613800138000``, ``008613800138000`` or international E.164."""
    if not isinstance(raw, str) or not _SHAPE.fullmatch(raw):
        raise InvalidPhone(raw)
    try:
        number = phonenumbers.parse(raw.translate(_SEPARATORS), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(raw) from None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _SMS_TYPES:
        raise InvalidPhone(raw)
    national = phonenumbers.national_significant_number(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=e164, masked=mask_phone(national, number.country_code))


def mask_phone(national: str, country_code: int = _HOME_CODE) -> str:
    """``13800138000`` → ``138****8000``; numbers abroad keep their ``+CC `` prefix."""
    masked = mask_digits(national)
    return masked if country_code == _HOME_CODE else f"+{country_code} {masked}"


def mask_digits(text: str) -> str:
    """The first 3 and last 4 digits around ``****``; too short to keep any, all hidden."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 9:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


# Seven or more digits with single spaces or hyphens between them, not inside an identifier
# by an underscore (``SMS_123456789``) and never running into a date (``2024-01-01``).
_DIGIT_RUN = re.compile(
    r"(?<![_\d])(?!\d{4}-\d{2}-\d{2}\b)\+?\d(?:[ \-]?(?!\d{4}-\d{2}-\d{2}\b)\d){6,}"
)
_SHORTEST_PHONE = 10**6


def _masked_match(match: re.Match[str]) -> str:
    try:
        return parse_phone(match.group()).masked
    except InvalidPhone:
        return mask_digits(match.group())


def scrub(text: str) -> str:
    """Mask every phone-shaped run of digits in free text (carrier messages, log lines, bodies)."""
    return _DIGIT_RUN.sub(_masked_match, text)


#: Keys whose values are identifiers, times or counts, never a number to hide.
SAFE_KEYS = frozenset({
    "id", "message_id", "request_id", "template_id", "created_at", "updated_at", "code",
    "provider", "status", "verification_status", "total", "page", "per_page", "success_count",
    "failed_count", "total_sent", "today_sent", "balance",
})


def mask_payload(value: Any, key: str | None = None) -> Any:
    """Mask phone-shaped values anywhere in a JSON-like structure (keys included).

    Integers are masked too when they are a valid number (``{"mobile": 13912345678}``), unless
    their key says they are a count or an id.
    """
    if isinstance(value, str):
        return value if key in SAFE_KEYS else scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: mask_payload(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_payload(item, key) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and key not in SAFE_KEYS and (
        abs(value) >= _SHORTEST_PHONE
    ):
        masked = scrub(str(value))
        return value if masked == str(value) else masked
    return value
