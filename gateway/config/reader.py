"""Typed, path-aware reading of one YAML mapping.

Every config error must name the key path it is about (``server.port: must be an integer``),
so each reader knows where it sits in the document and refuses keys nobody asked for.

Outside :func:`noting_problems` the first problem raises. Inside it (how the loader reads a whole
file, so that ``check-config`` lists every problem at once) each problem is noted, the reader goes
on with a stand-in value, and the loader raises them all together as :class:`ConfigErrors`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

from gateway.money import yuan_to_milli

__all__ = ["MISSING", "ConfigError", "ConfigErrors", "Reader", "checked", "note", "noting_problems"]

T = TypeVar("T")
MISSING: Any = object()
_SKIPPED: Any = object()  # a list element that could not be read


class ConfigError(Exception):
    """A config problem, printed as one line: ``<key path>: <what is wrong>``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class ConfigErrors(ConfigError):
    """Every problem one reading of the config found, printed one a line."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        super().__init__(problems[0].path, problems[0].problem)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


_NOTED: ContextVar[list[ConfigError] | None] = ContextVar("config_problems", default=None)


@contextmanager
def noting_problems(first: Iterable[ConfigError] = ()) -> Iterator[list[ConfigError]]:
    """Within it readers note each problem in the list it yields (after ``first``) and read on."""
    problems = list(first)
    token = _NOTED.set(problems)
    try:
        yield problems
    finally:
        _NOTED.reset(token)


def note(problem: ConfigError) -> None:
    """Raise ``problem``, or within noting_problems note it and return.

    One line a mistake: a problem at, above or below a key path already noted is taken for what that
    one caused (a missing secret is not also "too short") and left out.
    """
    problems = _NOTED.get()
    if problems is None:
        raise problem
    if not any(_related(problem.path, noted.path) for noted in problems):
        problems.append(problem)


def checked(read: Callable[[], T], stand_in: T) -> T:
    """``read()``; within noting_problems, a ConfigError it raises is noted and ``stand_in`` returned."""
    try:
        return read()
    except ConfigError as problem:
        if _NOTED.get() is None:
            raise
        note(problem)
        return stand_in
    except Exception:
        # Once a problem is noted, code reading on may trip over a stand-in value (a plugin's int()
        # of a missing text): the file is refused anyway, and for that problem, not a traceback.
        if not _NOTED.get():
            raise
        return stand_in


def _related(path: str, other: str) -> bool:
    return path == other or path.startswith((f"{other}.", f"{other}[")) or other.startswith(
        (f"{path}.", f"{path}["))


def _restate(path: str, problem: str) -> None:
    """Replace the problem noted at ``path``."""
    problems = _NOTED.get() or []
    for index, noted in enumerate(problems):
        if noted.path == path:
            problems[index] = ConfigError(path, problem)


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_FLAGS = {"true": True, "false": False}
_ZERO: dict[type, Any] = {str: "", int: 0, float: 0.0, bool: False}


def _or(default: Any, stand_in: Any) -> Any:
    """What a key that could not be read stands for while reading goes on: its default, if any."""
    return stand_in if default is MISSING else default


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
            note(ConfigError(path, "must be a mapping"))
            data = {}
        self.data = data
        self.path = path
        self._seen: set[str] = set()
        self._missing: list[str] = []  # required keys found missing: done() looks for a misspelling

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _raw(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        value = self.data.get(key)
        if value is None:
            if default is MISSING:
                self._missing.append(key)
                raise ConfigError(self.where(key), "required")
            return default
        return value

    def get(self, key: str, kind: type[T], default: Any = MISSING) -> T:
        """A scalar of ``kind``; ints are accepted where floats are asked for, and text that
        spells a number or a flag (what an environment variable gives) where those are."""
        return checked(partial(self._get, key, kind, default), _or(default, _ZERO.get(kind)))

    def _get(self, key: str, kind: type[T], default: Any) -> T:
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
        return checked(partial(self._text, key, default, allow_empty), _or(default, ""))

    def _text(self, key: str, default: Any, allow_empty: bool) -> str:
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
        def read() -> T:
            value = self._get(key, kind, default)
            if not low <= value <= high:  # type: ignore[operator]
                raise ConfigError(self.where(key), f"must be between {low} and {high}")
            return value

        return checked(read, _or(default, low))

    def choice(self, key: str, options: tuple[str, ...], default: Any = MISSING) -> str:
        def read() -> str:
            value = self._text(key, default, False)
            if value not in options:
                raise ConfigError(self.where(key), f"must be one of {', '.join(options)}")
            return value

        return checked(read, _or(default, options[0]))

    def money_milli(self, key: str, default: Any = MISSING) -> int:
        """Yuan as written (``0.045``) to integer milli-yuan."""
        def read() -> int:
            try:
                return yuan_to_milli(self._raw(key, default))
            except ValueError as exc:
                raise ConfigError(self.where(key), str(exc)) from None

        return checked(read, 0)

    def section(self, key: str) -> Reader:
        self._seen.add(key)
        return Reader(self.data.get(key), self.where(key))

    def items(self, key: str, read: Callable[[Any, str], T]) -> list[T]:
        """A list, each element turned into a value by ``read(element, path)``."""
        value = self._raw(key, [])
        if not isinstance(value, list):
            note(ConfigError(self.where(key), "must be a list"))
            return []
        found = (checked(partial(read, element, f"{self.where(key)}[{index}]"), _SKIPPED)
                 for index, element in enumerate(value))
        return [item for item in found if item is not _SKIPPED]

    def strings(self, key: str) -> tuple[str, ...]:
        def read(element: Any, path: str) -> str:
            if isinstance(element, int) and not isinstance(element, bool):
                element = str(element)
            if not isinstance(element, str) or not element:
                raise ConfigError(path, "must be a non-empty string")
            return element

        return tuple(self.items(key, read))

    def done(self) -> None:
        """Refuse the keys nobody read; a missing required key names the one it may be misspelt as."""
        unknown = sorted(str(key) for key in self.data if key not in self._seen)
        for key in self._missing:
            for guess in difflib.get_close_matches(key, unknown, n=1):
                unknown.remove(guess)
                _restate(self.where(key), f"required (found unknown key {guess} — misspelt?)")
        for key in unknown:
            note(ConfigError(self.where(key), "unknown key"))
