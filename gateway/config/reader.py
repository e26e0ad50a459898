"""Typed, path-aware reading of one YAML mapping.

Every config error must name the key path it is about (``server.port: must be an integer``),
so each reader knows where it sits in the document and refuses keys nobody asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from gateway.money import yuan_to_milli

__all__ = ["MISSING", "ConfigError", "Reader"]

T = TypeVar("T")
MISSING: Any = object()


class ConfigError(Exception):
    """A config problem, printed as one line: ``<key path>: <what is wrong>``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_FLAGS = {"true": True, "false": False}


def _from_text(text: str, kind: type) -> Any:
    """The number or flag a string spells, or the string itself (then refused by type)."""
    stripped = text.strip()
    if kind is int and _INTEGER_TEXT.fullmatch(stripped):
        return int(stripped)
    if kind is float and _NUMBER_TEXT.fullmatch(stripped):
        return float(stripped)
    if kind is bool and stripped.lower() in _FLAGS:
        return _FLAGS[stripped.lower()]
    return text


class Reader:
    """Read the keys of one mapping; ``done()`` rejects the keys nobody read."""

    def __init__(self, data: Any, path: str = "") -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(path, "must be a mapping")
        self.data = data
        self.path = path
        self._seen: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _raw(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        value = self.data.get(key)
        if value is None:
            if default is MISSING:
                raise ConfigError(self.where(key), "required")
            return default
        return value

    def get(self, key: str, kind: type[T], default: Any = MISSING) -> T:
        """A scalar of ``kind``; ints are accepted where floats are asked for, and text that
        spells a number or a flag (what an environment variable gives) where those are."""
        value = self._raw(key, default)
        if value is default:
            return value
        if isinstance(value, str) and kind in (int, float, bool):
            value = _from_text(value, kind)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if kind is int and isinstance(value, bool):
            raise ConfigError(self.where(key), "must be an integer")
        if not isinstance(value, kind):
            names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
            raise ConfigError(self.where(key), f"must be {names.get(kind, kind.__name__)}")
        return value

    def text(self, key: str, default: Any = MISSING, *, allow_empty: bool = False) -> str:
        """A string; numbers written bare in YAML (``sdk_app_id: 1400000000``) count as text."""
        value = self._raw(key, default)
        if value is default:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(self.where(key), "must be a string")
        if not value and not allow_empty:
            if default is MISSING:
                raise ConfigError(self.where(key), "required")
            return default
        return value

    def ranged(self, key: str, kind: type[T], low: Any, high: Any, default: Any = MISSING) -> T:
        value = self.get(key, kind, default)
        if not low <= value <= high:  # type: ignore[operator]
            raise ConfigError(self.where(key), f"must be between {low} and {high}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = MISSING) -> str:
        value = self.text(key, default)
        if value not in options:
            raise ConfigError(self.where(key), f"must be one of {', '.join(options)}")
        return value

    def money_milli(self, key: str, default: Any = MISSING) -> int:
        """Yuan as written (``0.045``) to integer milli-yuan."""
        value = self._raw(key, default)
        try:
            return yuan_to_milli(value)
        except ValueError as exc:
            raise ConfigError(self.where(key), str(exc)) from None

    def section(self, key: str) -> Reader:
        self._seen.add(key)
        return Reader(self.data.get(key), self.where(key))

    def items(self, key: str, read: Callable[[Any, str], T]) -> list[T]:
        """A list, each element turned into a value by ``read(element, path)``."""
        value = self._raw(key, [])
        if not isinstance(value, list):
            raise ConfigError(self.where(key), "must be a list")
        return [read(element, f"{self.where(key)}[{index}]") for index, element in enumerate(value)]

    def strings(self, key: str) -> tuple[str, ...]:
        def read(element: Any, path: str) -> str:
            if isinstance(element, int) and not isinstance(element, bool):
                element = str(element)
            if not isinstance(element, str) or not element:
                raise ConfigError(path, "must be a non-empty string")
            return element

        return tuple(self.items(key, read))

    def done(self) -> None:
        unknown = sorted(str(key) for key in self.data if key not in self._seen)
        if unknown:
            raise ConfigError(self.where(unknown[0]), "unknown key")
