"""Phone numbers: parsing and normalising with a real numbering plan, and the one masking rule.

Only :class:`Phone` ever carries a full number, and only on its way to a carrier; everything that is
shown, logged or stored uses :func:`mask_phone` / ``Phone.masked``.
"""

from __future__ import annotations

import re
from contextlib import suppress
from typing import Any

import msgspec
import phonenumbers
from phonenumbers import PhoneNumberType

__all__ = [
    "DEFAULT_REGION",
    "PHONE_PATTERN",
    "InvalidPhone",
    "Phone",
    "mask_digits",
    "mask_phone",
    "mask_template_id",
    "may_hold_phone",
    "parse_phone",
    "scrub",
]

DEFAULT_REGION = "CN"
#: What a phone field may look like before the numbering plan is asked (published in OpenAPI too).
PHONE_PATTERN = r"^ *\+?[0-9][0-9 \-]{4,30} *$"
_SHAPE = re.compile(PHONE_PATTERN)
_SEPARATORS = str.maketrans("", "", " -")
_SMS_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_HOME_CODE = phonenumbers.country_code_for_region(DEFAULT_REGION)
# The common shapes of a mainland mobile number, checked against the numbering plan's own patterns
# (see ``_mainland_mobile``) before phonenumbers is asked: it takes ~75 µs a number, this ~1 µs.
_MAINLAND_SHAPE = re.compile(rf"(?:\+{_HOME_CODE}|00{_HOME_CODE})?(1[0-9]{{10}})")


def _plan_matcher(desc: Any, length: int) -> re.Pattern[str] | None:
    """A number type of the plan for numbers of ``length`` digits, or None if it takes none."""
    if desc is None or not desc.national_number_pattern or length not in (desc.possible_length or ()):
        return None
    return re.compile(f"(?:{desc.national_number_pattern})")


def _plan(length: int) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """What phonenumbers checks, in its order: general shape, the types that win over mobile, mobile.

    Prefixes it would strip before reading the number (international and national prefixes,
    carrier codes) and the country code itself count as winning types: those go the slow way.
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region(DEFAULT_REGION)
    assert meta is not None  # phonenumbers carries the home region's plan
    before = [
        matcher.pattern
        for name in (
            "premium_rate",
            "toll_free",
            "shared_cost",
            "voip",
            "personal_number",
            "pager",
            "uan",
            "voicemail",
        )
        if (matcher := _plan_matcher(getattr(meta, name), length))
    ]
    prefixes = [meta.international_prefix, meta.national_prefix_for_parsing, str(_HOME_CODE)]
    before += [f"(?:{prefix}).*" for prefix in prefixes if prefix]
    general, mobile = _plan_matcher(meta.general_desc, length), _plan_matcher(meta.mobile, length)
    if general is None or mobile is None:  # a plan without 11-digit mobiles: always the slow way
        general = mobile = re.compile("(?!)")
    return general, re.compile("|".join(f"(?:{p})" for p in before) or "(?!)"), mobile


_PLAN_GENERAL, _PLAN_BEFORE_MOBILE, _PLAN_MOBILE = _plan(11)


class InvalidPhone(ValueError):
    """Not a number an SMS can be sent to; ``masked`` is safe to show."""

    def __init__(self, raw: object) -> None:
        self.masked = mask_digits(raw if isinstance(raw, str) else "")
        super().__init__(f"invalid phone number {self.masked}")


class Phone(msgspec.Struct, frozen=True):
    e164: str
    masked: str
    region: str = DEFAULT_REGION  # ISO region of the number (what ``providers.routes`` match on)


def parse_phone(raw: object) -> Phone:
    """``13800138000``, ``+8613800138000``, ``008613800138000`` or international E.164."""
    if not isinstance(raw, str):
        raise InvalidPhone(raw)
    fast = _mainland_mobile(raw)
    if fast is not None:
        return fast
    return _parse_with_plan(raw)


def _parse_with_plan(raw: str) -> Phone:
    """Any accepted form, read by phonenumbers (what the fast path above must agree with)."""
    if not _SHAPE.fullmatch(raw):
        raise InvalidPhone(raw)
    try:
        number = phonenumbers.parse(raw.translate(_SEPARATORS), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(raw) from None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _SMS_TYPES:
        raise InvalidPhone(raw)
    national = phonenumbers.national_significant_number(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number) or DEFAULT_REGION
    assert number.country_code is not None  # parse sets it on every number it returns
    return Phone(e164=e164, masked=mask_phone(national, number.country_code), region=region)


def _mainland_mobile(raw: str) -> Phone | None:
    """``raw`` when it is plainly a mainland mobile number, as phonenumbers would read it; else None."""
    shape = _MAINLAND_SHAPE.fullmatch(raw)
    if shape is None:
        return None
    national = shape.group(1)
    if (
        not _PLAN_MOBILE.fullmatch(national)
        or not _PLAN_GENERAL.fullmatch(national)
        or _PLAN_BEFORE_MOBILE.fullmatch(national)
    ):
        return None
    return Phone(e164=f"+{_HOME_CODE}{national}", masked=f"{national[:3]}****{national[-4:]}")


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


# What free text may hide a number in: any run of 7+ digits, split by one to three separators
# (``139.0384.3291``, ``(415) 555-0123``, ``139_0384_3291``), whatever letters touch it
# (``tel_13903843291``, ``id13903843291x``). Digits and separators are disjoint classes, so the
# scan is linear: nothing to backtrack into. What the gateway itself writes next to numbers is
# kept whole, and a run never runs into it: dates, times, UUIDs and hex ids (message, request and
# carrier ids), Aliyun template codes. A run that reads as a round figure, a range of them, a small
# amount or an IPv4 address is left alone too; see ``_NOT_A_NUMBER``.
_SEP = r"[ \t\u00a0\u3000\-._/()（）－]"
_HEX = "[0-9a-fA-F]"
_MONTH, _DAY = r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12]\d|3[01])"
_DATE = rf"(?:19|20)\d\d(?:-{_MONTH}-{_DAY}|/{_MONTH}/{_DAY}|\.{_MONTH}\.{_DAY})(?!\d)"
_TIME = r"\d{1,2}:\d\d(?::\d\d(?:[.,]\d{1,9})?)?(?!\d)"
_UUID = rf"{_HEX}{{8}}(?:-{_HEX}{{4}}){{3}}-{_HEX}{{12}}"
# 32, 40 or 64 hex digits (uuid4().hex, SHA-1, SHA-256): far longer than any number to hide.
_HEX_ID = rf"{_HEX}{{32}}(?:{_HEX}{{32}}|{_HEX}{{8}})?"
_ID = rf"(?<![0-9A-Za-z])(?:{_UUID}|{_HEX_ID})(?![0-9A-Za-z])"
# What masking wrote (``139****5678``, ``+1 415****0123``, ``****``) is kept as it is, and a run
# never reaches into it: masking twice changes nothing (``139****5678 137****5678`` would otherwise
# read as ``5678 137``, seven digits, and become ``139************5678``). A plus glued to digits
# before it starts no run, so a number masked there never glues to them either.
_MASKED = r"(?<!\d)\d{0,3}\*{4,}\d{0,4}(?!\d)"
_BARRIER = rf"{_DATE}|{_TIME}|{_ID}|\d{{1,3}}\*"


def _scan(starts: str, kept: str) -> re.Pattern[str]:
    # The leading lookahead turns most positions away at once: the scan stays cheap on plain text.
    return re.compile(
        rf"(?=[{starts}])(?:"
        rf"(?P<keep>(?<![0-9A-Za-z])(?:{_UUID}|{_HEX_ID}|SMS_\d+)(?![0-9A-Za-z])|{_DATE}|{_TIME}{kept})"
        rf"|(?P<run>(?:(?<!\d)\+(?!{_BARRIER}))?\d+(?:{_SEP}{{1,3}}(?!{_BARRIER})\d+)*))"
    )


# Text without a ``****`` cannot hold what masking wrote: it is spared looking for it at every digit.
_SCAN = _scan(r"\da-fA-FS+", "")
_SCAN_MASKED = _scan(r"\da-fA-FS+*", f"|{_MASKED}")
# Two numbers in one run (``13912345678 13712345678``) are masked one by one.
_BETWEEN_NUMBERS = re.compile(rf"(?<=\d{{7}})({_SEP}{{1,3}})(?=\d{{7}})")
_ROUND = rf"(?:0+|[1-9]0*|9+)(?:{_SEP}{{1,3}}0+)*"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_NOT_A_NUMBER = re.compile(
    rf"{_ROUND}(?:{_SEP}{{1,3}}{_ROUND})?"  # 1000000, 1-1000000, 100000-999999, 1 000 000.00
    r"|\d{1,6}\.\d{1,2}"  # 12345.67
    rf"|{_OCTET}(?:\.{_OCTET}){{3}}"  # 192.168.100.200
)
_SHORTEST_RUN = 7
_DIGITS = re.compile(r"\d+")
_SEVEN_DIGITS = re.compile(r"\d(?:\D*\d){6}")
# Longer runs are never one of the harmless shapes above: no need to look (and no time spent).
_LONGEST_NOT_A_NUMBER = 32


def _mask_number(text: str, shortest: int = _SHORTEST_RUN) -> str:
    """One number found in free text, masked; kept when it reads as something else."""
    digits = "".join(_DIGITS.findall(text))
    if len(digits) < shortest or (len(text) <= _LONGEST_NOT_A_NUMBER and _NOT_A_NUMBER.fullmatch(text)):
        return text
    # The numbering plan reads the digits alone (``+1 (415) 555-0123`` keeps its ``+1 ``); it
    # places no number under 9 digits without a country code, and it is slow: skip it for those.
    plus = "+" if text.startswith("+") else ""
    if plus or len(digits) >= 9:
        with suppress(InvalidPhone):
            return parse_phone(plus + digits).masked
    return mask_digits(digits)


def _masked_run(run: str, shortest: int) -> str:
    return "".join(
        part if i % 2 else _mask_number(part, shortest) for i, part in enumerate(_BETWEEN_NUMBERS.split(run))
    )


def scrub(text: str, shortest: int = _SHORTEST_RUN) -> str:
    """Mask every phone-shaped run of digits in free text (carrier messages, log lines, bodies):
    runs of ``shortest`` digits or more."""
    if not _SEVEN_DIGITS.search(text):  # most lines: not worth a scan
        return text
    parts: list[str] = []
    done = 0
    for match in (_SCAN_MASKED if "****" in text else _SCAN).finditer(text):
        start, end = match.span("run")
        if end - start >= shortest:  # (-1, -1) for what is kept
            masked = _masked_run(match.group("run"), shortest)
            if masked != match.group("run"):
                parts += (text[done:start], masked)
                done = end
    return "".join((*parts, text[done:])) if parts else text


# A superset of what ``scrub`` masks, for a quick look over a whole JSON document: 7 digits, each
# from the next at most 3 separators away (a tab is a separator too, written ``\t`` in JSON),
# once the identifiers ``scrub`` keeps whole are taken out.
_KEPT_IDS = re.compile(_ID)
_LOOSE_SEP = _SEP[:-1] + r"\\t]"  # a backslash and a "t" count as separators: one class, no alternation
_PHONE_RUN = re.compile(r"\d" + rf"{_LOOSE_SEP}{{0,3}}\d" * 6)


def may_hold_phone(text: str) -> bool:
    """False when no number ``scrub`` or ``mask_payload`` would mask can be in ``text`` (JSON or
    plain): the cheap safety net over a body built masked. True means: look closer."""
    return _PHONE_RUN.search(text) is not None and _PHONE_RUN.search(_KEPT_IDS.sub(" ", text)) is not None


# A template id's runs shorter than this are the carriers' own template numbers (Tencent's have
# 6-7 digits), not numbers to hide; nine digits hold a mobile or a number with its area code.
_SHORTEST_IN_TEMPLATE_ID = 9


def mask_template_id(template_id: str) -> str:
    """A template id as it is kept and shown: a number in it masked (``13912345678`` →
    ``139****5678``, the phones' rule), the carriers' template numbers and ``SMS_`` codes whole.
    The carrier is sent the id as the caller wrote it."""
    return scrub(template_id, _SHORTEST_IN_TEMPLATE_ID)
