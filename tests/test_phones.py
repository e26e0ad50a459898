"""Phone numbers: which forms are accepted, their E.164 form, and the one masking rule."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.phones import (
    InvalidPhone,
    _mainland_mobile,
    _parse_with_plan,
    mask_digits,
    mask_phone,
    parse_phone,
    scrub,
)

MAINLAND = "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "e164", "masked"),
    [
        ("13800138000", MAINLAND, "138****8000"),
        ("+8613800138000", MAINLAND, "138****8000"),
        ("008613800138000", MAINLAND, "138****8000"),
        ("8613800138000", MAINLAND, "138****8000"),
        ("138 0013 8000", MAINLAND, "138****8000"),
        ("138-0013-8000", MAINLAND, "138****8000"),
        ("+86 138 0013 8000", MAINLAND, "138****8000"),
        ("+86-138-0013-8000", MAINLAND, "138****8000"),
        ("0086 13800138000", MAINLAND, "138****8000"),
        ("13800138000 ", MAINLAND, "138****8000"),
        (" 13800138000", MAINLAND, "138****8000"),
        ("19912345678", "+8619912345678", "199****5678"),
        ("+14155550123", "+14155550123", "+1 415****0123"),
        ("+1 415-555-0123", "+14155550123", "+1 415****0123"),
        ("+447911123456", "+447911123456", "+44 791****3456"),
    ],
)
def test_accepted_forms_normalise_to_e164_and_mask(raw, e164, masked):
    phone = parse_phone(raw)
    assert phone.e164 == e164
    assert phone.masked == masked


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("01012345678", "010****5678"),  # Beijing landline: no SMS
        ("010-12345678", "010****5678"),
        ("+86 10 12345678", "861****5678"),
        ("400-810-8888", "400****8888"),  # service number
        ("95588", "****"),
        ("1380013800", "138****3800"),  # one digit short
        ("138001380001", "138****0001"),  # one digit long
        ("12345678901", "123****8901"),  # no such mobile prefix
        ("12345", "****"),
        ("abc", "****"),
        ("1380013800a", "138****3800"),
        ("(138)00138000", "138****8000"),
        ("", "****"),
        ("   ", "****"),
        ("+", "****"),
        ("1" * 40, "111****1111"),
        ("1" * 10_000, "111****1111"),
        ("13800138000\n", "138****8000"),
    ],
)
def test_rejected_strings_carry_only_a_masked_form(raw, masked):
    with pytest.raises(InvalidPhone) as caught:
        parse_phone(raw)
    assert caught.value.masked == masked
    assert str(caught.value) == f"invalid phone number {masked}"
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) >= 8:
        assert digits not in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [None, 13800138000, 8613800138000.0, True, ["13800138000"], {"phone": "13800138000"}, b"13800138000"],
)
def test_non_strings_are_rejected_without_echoing_them(raw):
    with pytest.raises(InvalidPhone) as caught:
        parse_phone(raw)
    assert caught.value.masked == "****"
    assert "13800138000" not in str(caught.value)


def test_full_width_digits_are_rejected_and_masked():
    with pytest.raises(InvalidPhone) as caught:
        parse_phone("１３８００１３８０００")
    assert "０１３" not in caught.value.masked
    assert "****" in caught.value.masked


def test_invalid_phone_is_a_value_error():
    with pytest.raises(ValueError, match=r"invalid phone number"):
        parse_phone("not a phone")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("13800138000", "138****8000"),
        ("138-0013-8000", "138****8000"),
        ("+86 138 0013 8000", "861****8000"),
        ("123456789", "123****6789"),
        ("12345678", "****"),  # too short to keep any digit
        ("1", "****"),
        ("", "****"),
        ("no digits", "****"),
    ],
)
def test_mask_digits_keeps_first_three_and_last_four(text, masked):
    assert mask_digits(text) == masked


def test_mask_phone_prefixes_numbers_abroad_with_their_country_code():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("13800138000", 86) == "138****8000"
    assert mask_phone("4155550123", 1) == "+1 415****0123"


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("number 13800138000 is blocked", "13800138000"),
        ("number +8613800138000 is blocked", "13800138000"),
        ("isp said: 138-0013-8000, busy", "0013"),
        ("to 138 0013 8000.", "0013"),
        ("E:+8613800138000;", "13800138000"),
        ("x13800138000y", "13800138000"),
        ("intl +14155550123 refused", "4155550123"),
        ("two: 13800138000 and 13900139000", "13900139000"),
    ],
)
def test_scrub_masks_every_phone_in_free_text(text, full):
    scrubbed = scrub(text)
    assert full not in scrubbed
    assert "****" in scrubbed


def test_scrub_keeps_the_text_around_the_number_and_the_last_four_digits():
    assert scrub("number 13800138000 is blocked") == "number 138****8000 is blocked"
    assert scrub("a 13800138000, b 13900139000.") == "a 138****8000, b 139****9000."


@pytest.mark.parametrize(
    "text",
    [
        "code 1234 sent",
        "template 123456 not approved",
        "2024-01-01 12:00:00",
        "error 40001",
        "no digits at all",
        "",
    ],
)
def test_scrub_leaves_text_without_phones_alone(text):
    assert scrub(text) == text


def test_every_accepted_form_is_masked_identically_in_responses_and_in_free_text():
    for raw in ("13800138000", "138-0013-8000", "138 0013 8000"):
        assert parse_phone(raw).masked == scrub(raw) == "138****8000"


# The fast path for mainland mobiles (``_mainland_mobile``) must agree with the numbering plan on
# every input: the same Phone where it answers, and it answers only for what the plan accepts.
def _outcome(parse, raw):
    try:
        return parse(raw)
    except InvalidPhone as exc:
        return ("invalid", exc.masked)


def _agrees(raw):
    fast = _mainland_mobile(raw)
    slow = _outcome(_parse_with_plan, raw)
    assert fast is None or fast == slow, raw
    assert _outcome(parse_phone, raw) == slow, raw
    return fast is not None


@pytest.mark.parametrize("shape", ["{}", "+86{}", "0086{}"])
def test_fast_path_agrees_with_the_plan_for_every_four_digit_prefix(shape):
    rng = random.Random(13)
    answered = 0
    for prefix in range(1000, 2000):
        for _ in range(3):
            answered += _agrees(shape.format(f"{prefix}{rng.randrange(10**7):07d}"))
    assert answered > 300  # the common shapes do take the fast path


@pytest.mark.parametrize("raw", ["13800138000", "+8613800138000", "008613800138000"])
def test_common_mainland_shapes_take_the_fast_path(raw):
    assert _mainland_mobile(raw) == parse_phone(raw) == _parse_with_plan(raw)


_DIGIT_STRINGS = st.text(alphabet="0123456789", min_size=9, max_size=13)


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from(["", "+", "+86", "0086", "86", "00", "+1", " ", "1"]),
    digits=_DIGIT_STRINGS,
    suffix=st.sampled_from(["", " ", "\n", "x", "-"]),
)
def test_fast_path_agrees_with_the_plan_on_random_inputs(prefix, digits, suffix):
    _agrees(prefix + digits + suffix)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="+0123456789１３８ -", max_size=16))
def test_fast_path_agrees_with_the_plan_on_any_text(raw):
    _agrees(raw)
