"""What a config field declares beyond its type and msgspec's ``Meta`` bounds.

A field is declared once, in its Struct: ``Annotated[int, Meta(ge=0, le=65535)] = 8080``. Where the
YAML spells a value otherwise than it is kept (yuan kept as milli-yuan, ``"host:port"`` as a pair) the
field says how, with :class:`From` or :class:`Then`; ``gateway.config.reader`` follows what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from msgspec import Meta

__all__ = ["From", "Pairs", "Secret", "SecretText", "Text", "Then", "Unique"]


@dataclass(frozen=True, slots=True)
class From:
    """The YAML value is not of the field's type: ``convert(value)`` makes it one, or raises
    ValueError saying what the value must be (the reader prefixes the key path)."""

    convert: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Then:
    """Once the value has its type and bounds, ``convert(value)`` is what is kept (trimmed,
    hashed, checked further), or ValueError saying what the value must be."""

    convert: Callable[[Any], Any]


class Unique:
    """In a list of mappings, no two elements may give the same value for any of ``keys``."""

    __slots__ = ("keys",)

    def __init__(self, *keys: str) -> None:
        self.keys = keys


@dataclass(frozen=True, slots=True)
class Pairs:
    """A ``tuple[tuple[str, X], ...]`` written in YAML as a mapping: its (key, value) pairs in order."""


class SecretText(str):
    """A secret's text: itself everywhere but in a repr, so printed settings never show it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


#: Text that must not be empty; left empty it counts as not given (its default, else "required").
Text = Annotated[str, Meta(min_length=1)]
#: A credential: non-empty text kept as :class:`SecretText`.
Secret = Annotated[str, Meta(min_length=1), Then(SecretText)]
