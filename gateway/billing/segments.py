"""How many segments a message is billed as, counted before the send so the charge is right at once.

The carriers count the signature with its 【】 and the text. Mainland China numbers: UTF-16 code units
(an emoji is 2), one segment up to 70, else 67 each. Elsewhere: GSM-7 units where every character is in
the default alphabet or the carriers' extension list (an extension character is 2), 160 / 153; else
UCS-2 code units, 70 / 67. A long international message is split as handsets and SMSCs split it: an
escape pair or a surrogate pair never straddles two segments. Sources: Tencent Cloud
https://cloud.tencent.com/document/product/382/18052 and /382/34671, Aliyun
https://help.aliyun.com/zh/sms/user-guide/message-rules, AOSP ``GsmAlphabet.findGsmSeptetLimitIndex``.
"""

from __future__ import annotations

import re

__all__ = ["count_segments"]

# GSM 03.38 (3GPP TS 23.038) default alphabet, row by row: 127 characters, LF and CR among them; ESC
# is left out, it only opens an extension character.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension characters Tencent and Aliyun list, each sent as ESC + character. The table's form
# feed is not among them: Aliyun bills a message with an unlisted extension character as UCS-2.
_GSM_EXTENSION = frozenset("^{}\\[~]|€")
_GSM = _GSM_BASIC | _GSM_EXTENSION

_ESCAPED = re.compile("[" + re.escape("".join(sorted(_GSM_EXTENSION))) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # a surrogate pair in UTF-16: 2 code units
# The same alphabet as bytes, for ASCII texts: ``bytes.translate`` sorts them in one pass in C.
_GSM_BASIC_ASCII = bytes(sorted(ord(char) for char in _GSM_BASIC if char.isascii()))
_GSM_EXTENSION_ASCII = bytes(sorted(ord(char) for char in _GSM_EXTENSION if char.isascii()))


def count_segments(text: str, *, international: bool) -> int:
    """How many segments a carrier bills ``text`` (the signature included, e.g.
    "【SMS Edge】您的验证码是1234") as.

    An empty text is one segment: a sent message is always billed as at least one.
    """
    if not international:
        # The carriers state a plain count here (70, else 67 a segment), nothing about pairs.
        units = len(text) if text.isascii() else len(text) + len(_ASTRAL.findall(text))
        return 1 if units <= 70 else -(-units // 67)
    if text.isascii():  # the usual international text, without a Python step per character
        escaped = text.encode().translate(None, _GSM_BASIC_ASCII)  # what is not a 1-unit character
        if escaped.translate(None, _GSM_EXTENSION_ASCII):  # a backtick or a control character
            return _segments(text, 0, _ASTRAL, single=70, part=67)
        return _segments(text, len(escaped), _ESCAPED, single=160, part=153)
    if _GSM.issuperset(text):
        return _segments(text, len(_ESCAPED.findall(text)), _ESCAPED, single=160, part=153)
    return _segments(text, len(_ASTRAL.findall(text)), _ASTRAL, single=70, part=67)


def _segments(text: str, wides: int, wide: re.Pattern[str], *, single: int, part: int) -> int:
    """Segments of a message whose ``wides`` characters matching ``wide`` take 2 units, the rest 1."""
    if len(text) + wides <= single:
        return 1
    if not wides:
        return -(-len(text) // part)
    # Each segment of a long message holds ``part`` units, and a wide character that finds one unit
    # left in a segment starts the next one, leaving that unit empty (``position`` counts it).
    position = start = 0
    for match in wide.finditer(text):
        position += match.start() - start
        position += 3 if position % part == part - 1 else 2
        start = match.end()
    position += len(text) - start
    return -(-position // part)
