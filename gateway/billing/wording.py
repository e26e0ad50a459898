"""A template's text with the caller's values in it: what the carrier sends, and bills.

Carriers show a template's placeholders in their own ways: Aliyun ``${code}``, Tencent ``{1}`` (the
first value of ``params``), and the config's examples ``{code}``; all three are read here, so an
operator can paste the text as the carrier's console shows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

__all__ = ["placeholder_names", "render"]

_PLACEHOLDER = re.compile(r"\$?\{([^{}\s]+)\}")


def placeholder_names(text: str, params: tuple[str, ...]) -> set[str]:
    """The params ``text`` names, ``{N}`` read as the N-th of ``params``; a number beyond them is
    kept as ``{N}`` so the config check can name it."""
    return {_name(token, params) for token in _PLACEHOLDER.findall(text)}


def _name(token: str, params: tuple[str, ...]) -> str:
    if token.isdigit():
        place = int(token)
        return params[place - 1] if 1 <= place <= len(params) else f"{{{token}}}"
    return token


@lru_cache(maxsize=1024)
def _parts(text: str, params: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """``text`` cut once into (literal, param name or None) pieces, so a send only joins them."""
    pieces: list[tuple[str, str | None]] = []
    start = 0
    for match in _PLACEHOLDER.finditer(text):
        pieces.append((text[start : match.start()], _name(match.group(1), params)))
        start = match.end()
    pieces.append((text[start:], None))
    return tuple(pieces)


def render(text: str, params: tuple[str, ...], values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by its value (a missing value leaves it empty: the
    send is refused for it before anything is counted)."""
    return "".join(
        literal + (values.get(name, "") if name is not None else "") for literal, name in _parts(text, params)
    )
