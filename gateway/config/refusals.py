"""What a config value refused by msgspec must be, phrased from its declaration (``Meta`` bounds,
a ``Literal``'s options, the type), so the message cannot drift from the bounds it reports. The
reader (``gateway.config.reader``) walks the document; this only words a refusal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args, get_origin

import msgspec

__all__ = ["refusal"]

_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def refusal(data: Any, base: Any, extras: Sequence[Any]) -> str:
    """What a value refused by msgspec must be, in the declaration's terms."""
    if get_origin(base) is Literal:
        return f"must be one of {', '.join(str(option) for option in get_args(base))}"
    try:
        value = msgspec.convert(data, base, strict=False)
    except msgspec.ValidationError:
        return f"must be {_KINDS.get(base, getattr(base, '__name__', str(base)))}"
    bounds: dict[str, Any] = {}
    for meta in (extra for extra in extras if isinstance(extra, msgspec.Meta)):
        bounds.update(
            {
                name: getattr(meta, name)
                for name in ("ge", "le", "min_length", "max_length")
                if getattr(meta, name) is not None
            }
        )
    return _outside(value, bounds)


def _outside(value: Any, bounds: Mapping[str, Any]) -> str:
    low, high = bounds.get("ge"), bounds.get("le")
    if isinstance(value, str):
        shortest, longest = bounds.get("min_length", 0), bounds.get("max_length")
        if len(value) >= shortest:
            return f"must be at most {longest} characters"
        return "must be a non-empty string" if shortest == 1 else f"must be at least {shortest} characters"
    if low is not None and high is not None:
        return f"must be between {low} and {high}"
    return f"must be at least {low}" if low is not None else f"must be at most {high}"
