"""Money as integer milli-yuan: exact for prices such as 0.045, never a float in arithmetic."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["MAX_YUAN", "yuan_text", "yuan_to_milli"]

MAX_YUAN = 10**9


def yuan_to_milli(value: object) -> int:
    """``"0.045"`` → 45. Refuses what is not a finite, non-negative amount with ≤ 3 decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be an amount in yuan")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be an amount in yuan") from None
    if not amount.is_finite():
        raise ValueError("must be an amount in yuan")
    if amount < 0:
        raise ValueError("must be a non-negative amount of yuan")
    if amount > MAX_YUAN:
        raise ValueError(f"must be at most {MAX_YUAN} yuan")
    milli = amount * 1000
    if milli != milli.to_integral_value():
        raise ValueError("must be a non-negative amount with at most 3 decimals")
    return int(milli)


def yuan_text(milli: int) -> str:
    """45 → ``"0.045"``, 1500 → ``"1.50"``: two decimals as money is read, the third only when the
    amount has one (a page never rounds money away). ``SmsEdge.yuan`` in static/pages.js is the same."""
    sign = "-" if milli < 0 else ""
    whole, part = divmod(abs(milli), 1000)
    decimals = f"{part:03d}"
    return f"{sign}{whole}.{decimals[:2] if part % 10 == 0 else decimals}"
