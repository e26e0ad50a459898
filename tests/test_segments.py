"""Segments counted as the carriers bill them (``gateway.billing.segments``): every count is exact.

Domestic is a mainland China number (Tencent Cloud SMS, Aliyun): UTF-16 code units, 70 in one
segment, else 67 a segment. International: GSM-7 units, 160 / 153, else UCS-2 code units, 70 / 67,
where a long message never splits an escape pair or a surrogate pair across two segments.
"""

from __future__ import annotations

import pytest

from gateway.billing.segments import count_segments

SIGN = "【SMS Edge】"  # 10 characters: the signature counts with its brackets
EMOJI = "😀"  # outside the BMP: a surrogate pair, 2 UTF-16 code units

DOMESTIC = [
    pytest.param("", 1, id="empty-is-one"),
    pytest.param("【SMS Edge】您的验证码是1234", 1, id="signature-and-code"),
    pytest.param("字" * 70, 1, id="chinese-70"),
    pytest.param("字" * 71, 2, id="chinese-71"),
    pytest.param("字" * 134, 2, id="chinese-134"),
    pytest.param("字" * 135, 3, id="chinese-135"),
    pytest.param("a" * 70, 1, id="english-70"),
    pytest.param("a" * 71, 2, id="english-71-no-gsm-at-home"),
    pytest.param("a" * 160, 3, id="english-160-is-three-at-home"),
    pytest.param(SIGN + "字" * 60, 1, id="signature-fills-to-70"),
    pytest.param(SIGN + "字" * 61, 2, id="signature-tips-to-71"),
    pytest.param(SIGN + "Code 1234，5分钟内有效。" * 3 + "请勿泄露给他人！O", 1, id="mixed-70"),
    pytest.param(SIGN + "Code 1234，5分钟内有效。" * 3 + "请勿泄露给他人！OK", 2, id="mixed-71"),
    pytest.param(SIGN + "字" * 58 + EMOJI, 1, id="emoji-is-two-70"),
    pytest.param(SIGN + "字" * 59 + EMOJI, 2, id="emoji-is-two-71"),
    pytest.param("👍" * 35, 1, id="emoji-35-is-70"),
    pytest.param("👍" * 36, 2, id="emoji-36-is-72"),
    # Plain count at home: a pair across the 67 boundary is not moved (the carriers state no such rule).
    pytest.param("字" * 66 + EMOJI + "字" * 66, 2, id="emoji-at-boundary-134"),
    # Aliyun's example: "短信长度为160个字，按照67字、67字、26字分隔成3条短信进行计费"
    # (https://help.aliyun.com/zh/sms/user-guide/message-rules).
    pytest.param("字" * 160, 3, id="aliyun-example-160"),
    # Tencent's example: "短信长度为150字，则按照67字/67字/16字分隔成3条计费"
    # (https://cloud.tencent.com/document/product/382/18052).
    pytest.param("字" * 150, 3, id="tencent-example-150"),
]

INTERNATIONAL = [
    pytest.param("", 1, id="empty-is-one"),
    pytest.param("[SMS Edge] Your code is 1234", 1, id="english-code"),
    pytest.param("a" * 160, 1, id="gsm-160"),
    pytest.param("a" * 161, 2, id="gsm-161"),
    pytest.param("a" * 306, 2, id="gsm-306"),
    pytest.param("a" * 307, 3, id="gsm-307"),
    pytest.param("é" * 161, 2, id="gsm-non-ascii-basic-161"),
    pytest.param("Ünïcode? no: Ü ï" + "a" * 54, 1, id="letter-outside-gsm-ucs2-70"),
    pytest.param("Ünïcode? no: Ü ï" + "a" * 55, 2, id="letter-outside-gsm-ucs2-71"),
    # Extension characters are 2 units each (Tencent and Aliyun list | ^ € { } [ ] ~ \).
    pytest.param("{" * 80, 1, id="extension-80-is-160"),
    pytest.param("{" * 80 + "a", 2, id="extension-80-plus-one-is-161"),
    pytest.param("€" * 80, 1, id="euro-80-is-160"),
    pytest.param("€" * 80 + "a", 2, id="euro-80-plus-one-is-161"),
    pytest.param("|^~\\[]" + "a" * 148, 1, id="extension-mix-160"),
    pytest.param("|^~\\[]" + "a" * 149, 2, id="extension-mix-161"),
    # An escape pair is never split: 152 units, then "{" finds one unit left and opens segment 2.
    pytest.param("a" * 152 + "{" + "a" * 152, 3, id="extension-straddles-306"),
    pytest.param("a" * 151 + "{" + "a" * 153, 2, id="extension-fits-306"),
    pytest.param("{" * 153, 3, id="extensions-only-306"),
    # Not GSM-7 at all: the whole message goes as UCS-2.
    pytest.param("a" * 69 + "`", 1, id="backtick-ucs2-70"),
    pytest.param("a" * 70 + "`", 2, id="backtick-ucs2-71"),
    # Form feed is in the GSM extension table but not on the carriers' list, and Aliyun bills a
    # message with an unlisted extension character as UCS-2: 101 code units, not 102 GSM units.
    pytest.param("a" * 100 + "\f", 2, id="form-feed-is-ucs2"),
    pytest.param("您" * 70, 1, id="ucs2-70"),
    pytest.param("您" * 71, 2, id="ucs2-71"),
    pytest.param("您" * 134, 2, id="ucs2-134"),
    pytest.param("您" * 135, 3, id="ucs2-135"),
    pytest.param("Your code 1234，谢谢", 1, id="mixed-english-chinese"),
    pytest.param(EMOJI * 35, 1, id="emoji-35-is-70"),
    pytest.param(EMOJI * 36, 2, id="emoji-36-is-72"),
    # A surrogate pair is never split: 66 units, then the emoji finds one unit left.
    pytest.param("您" * 66 + EMOJI + "您" * 66, 3, id="emoji-straddles-134"),
    pytest.param("您" * 65 + EMOJI + "您" * 67, 2, id="emoji-fits-134"),
    pytest.param(EMOJI * 67, 3, id="emojis-only-134"),
    # Tencent's examples (https://cloud.tencent.com/document/product/382/18052): "320 characters ...
    # billed as 3 messages (153 + 153 + 14)"; "150 characters ... 3 messages (67 + 67 + 16)".
    pytest.param("a" * 320, 3, id="tencent-example-gsm-320"),
    pytest.param("您" * 150, 3, id="tencent-example-ucs2-150"),
    # Aliyun's example (https://help.aliyun.com/zh/sms/user-guide/message-rules): "短信长度为350字，
    # 按照153字、153字、44字分隔成3条".
    pytest.param("a" * 350, 3, id="aliyun-example-gsm-350"),
]


@pytest.mark.parametrize(("text", "segments"), DOMESTIC)
def test_domestic_segments(text, segments):
    assert count_segments(text, international=False) == segments


@pytest.mark.parametrize(("text", "segments"), INTERNATIONAL)
def test_international_segments(text, segments):
    assert count_segments(text, international=True) == segments
