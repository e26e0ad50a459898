"""Reading a YAML document into the Structs of ``gateway.config.model``, every problem at once.

msgspec stops at a document's first error; a file with five mistakes gets five lines here, each
naming its key path. The reader walks each Struct's fields (``msgspec.structs.fields``) and converts
field by field: a value through ``msgspec.convert(strict=False)`` (text that spells a number or a flag,
as an environment variable gives, is taken), a refusal phrased from the field's type and ``Meta``
bounds (``gateway.config.refusals``). A Struct whose every field was read is then held to its rules
(``gateway.config.rules``); one that was not is not, so a mistake is one line, not also the ones it
caused.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from gateway.config.fields import From, Pairs, Then, Unique
from gateway.config.refusals import refusal

__all__ = ["FAILED", "ConfigError", "ConfigErrors", "Conversion", "Rule", "Section"]

FAILED: Any = object()  # what a value that could not be read is read as (its problem is noted)


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


#: A rule between the values of one Struct at a key path: the problems it finds.
Rule = Callable[[Any, str], Iterable[ConfigError]]
#: Reads a Struct a plain walk cannot (a backend: its plugin decides its keys): (conversion, data,
#: path, the key it sits under) -> the value, or FAILED.
Hook = Callable[["Conversion", Any, str, str], Any]


class Conversion:
    """One reading of a document: the problems found, in the document's order."""

    def __init__(
        self, rules: Mapping[type, Rule], hooks: Mapping[type, Hook], problems: Iterable[ConfigError] = ()
    ) -> None:
        self.rules = rules
        self.hooks = hooks
        self.problems = list(problems)

    def note(self, problem: ConfigError) -> None:
        """One line a mistake: a problem at, above or below a key path already noted (a secret file
        that cannot be read, then its key "required") is taken for what that one caused."""
        if not any(_related(problem.path, noted.path) for noted in self.problems):
            self.problems.append(problem)

    def read(self, data: Any, kind: Any, path: str = "", key: str = "") -> Any:
        """``data`` as a value of ``kind`` (a type annotation), or FAILED once its problems are noted."""
        if _is_optional(kind):
            return None if data is None else self.read(data, _required_arm(kind), path, key)
        base, extras = _unpacked(kind)
        converter = next((extra for extra in extras if isinstance(extra, From)), None)
        if converter is not None:
            value = self._converted(converter.convert, data, path)
        elif isinstance(base, type) and issubclass(base, msgspec.Struct):
            value = self._struct(data, base, path, key)
        elif get_origin(base) in (tuple, frozenset):
            value = (
                self._pairs(data, base, path)
                if any(isinstance(extra, Pairs) for extra in extras)
                else self._items(data, base, extras, path)
            )
        elif get_origin(base) is dict:
            value = self._mapping(data, get_args(base)[1], path)
        else:
            value = self._leaf(data, kind, base, extras, path)
        for then in (extra for extra in extras if isinstance(extra, Then)):
            if value is FAILED:
                break
            value = self._converted(then.convert, value, path)
        return value

    def section(self, data: Any, path: str) -> Section | None:
        """A mapping to read fields from (none given: an empty one), or None once refused."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.note(ConfigError(path, "must be a mapping"))
            return None
        return Section(self, data, path)

    def checked(self, value: Any, path: str) -> Any:
        """``value`` once its rules hold, else FAILED (each broken rule noted)."""
        rule = self.rules.get(type(value))
        broken = list(rule(value, path)) if rule else []
        for problem in broken:
            self.note(problem)
        return FAILED if broken else value

    def _struct(self, data: Any, cls: type[msgspec.Struct], path: str, key: str) -> Any:
        if (hook := self.hooks.get(cls)) is not None:
            return hook(self, data, path, key)
        section = self.section(data, path)
        if section is None:
            return FAILED
        values = section.fields(cls)
        return self.checked(cls(**values), path) if section.close() else FAILED

    def _items(self, data: Any, base: Any, extras: Sequence[Any], path: str) -> Any:
        if not isinstance(data, list):
            self.note(ConfigError(path, "must be a list"))
            return FAILED
        element = get_args(base)[0]
        items = [self.read(item, element, f"{path}[{index}]") for index, item in enumerate(data)]
        if any(item is FAILED for item in items):
            return FAILED
        for unique in (extra for extra in extras if isinstance(extra, Unique)):
            if not self._unique(data, unique.keys, path):
                return FAILED
        return get_origin(base)(items)

    def _unique(self, data: list[Any], keys: Sequence[str], path: str) -> bool:
        duplicates = []
        for key in keys:
            given = [item.get(key) if isinstance(item, Mapping) else None for item in data]
            duplicates += [
                ConfigError(f"{path}[{index}].{key}", f"duplicate {key}")
                for index, value in enumerate(given)
                if value is not None and value in given[:index]
            ]
        for problem in duplicates:
            self.note(problem)
        return not duplicates

    def _mapping(self, data: Any, kind: Any, path: str) -> Any:
        if not isinstance(data, Mapping):
            self.note(ConfigError(path, "must be a mapping"))
            return FAILED
        read = {str(key): self.read(value, kind, f"{path}.{key}", str(key)) for key, value in data.items()}
        return FAILED if any(value is FAILED for value in read.values()) else read

    def _pairs(self, data: Any, base: Any, path: str) -> Any:
        read = self._mapping(data, get_args(get_args(base)[0])[1], path)
        return FAILED if read is FAILED else tuple(read.items())

    def _leaf(self, data: Any, kind: Any, base: Any, extras: Sequence[Any], path: str) -> Any:
        if base is str and isinstance(data, int | float) and not isinstance(data, bool):
            data = str(data)  # a number written bare in YAML (sdk_app_id: 1400000000) is its digits
        try:
            return msgspec.convert(data, kind, strict=False)
        except msgspec.ValidationError:
            self.note(ConfigError(path, refusal(data, base, extras)))
            return FAILED

    def _converted(self, convert: Callable[[Any], Any], value: Any, path: str) -> Any:
        try:
            return convert(value)
        except ValueError as exc:
            self.note(ConfigError(path, str(exc)))
            return FAILED

    def restate(self, path: str, problem: str) -> None:
        """Replace the problem noted at ``path``."""
        for index, noted in enumerate(self.problems):
            if noted.path == path:
                self.problems[index] = ConfigError(path, problem)


class Section:
    """The keys of one mapping, read into fields; ``close()`` refuses the keys no field declares."""

    def __init__(self, conversion: Conversion, data: Mapping[Any, Any], path: str) -> None:
        self.conversion = conversion
        self.data = data
        self.path = path
        self.refused: list[str] = []  # keys that could not be read
        self._known: set[str] = set()
        self._missing: list[str] = []  # required keys not given: close() looks for a misspelling

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fields(self, cls: type[msgspec.Struct], leave: Iterable[str] = ()) -> dict[str, Any]:
        """The values of ``cls``'s fields (by attribute name) that this mapping gives and that read;
        a field left out keeps its default (a Struct without one is read from an empty mapping)."""
        values = {}
        for field in msgspec.structs.fields(cls):
            key = field.encode_name
            if field.name in leave:
                continue
            self._known.add(key)
            data = self.data.get(key)
            if data is None or (data == "" and _empty_is_absent(field.type)):
                if not field.required:
                    continue
                if not _is_struct(field.type):
                    self._refuse(key, "required")
                    self._missing.append(key)
                    continue
                data = {}
            value = self.conversion.read(data, field.type, self.where(key), key)
            if value is FAILED:
                self.refused.append(key)
            else:
                values[field.name] = value
        return values

    def close(self) -> bool:
        """Refuse the keys no field declared (a required key missing names its likely misspelling);
        True when every key of the mapping was read."""
        unknown = sorted(str(key) for key in self.data if str(key) not in self._known)
        for key in self._missing:
            for guess in difflib.get_close_matches(key, unknown, n=1):
                unknown.remove(guess)
                self.conversion.restate(self.where(key), f"required (found unknown key {guess} — misspelt?)")
        for key in unknown:
            self._refuse(key, "unknown key")
        return not self.refused

    def _refuse(self, key: str, problem: str) -> None:
        self.conversion.note(ConfigError(self.where(key), problem))
        self.refused.append(key)


def _related(path: str, other: str) -> bool:
    return (
        path == other
        or path.startswith((f"{other}.", f"{other}["))
        or other.startswith((f"{path}.", f"{path}["))
    )


def _is_optional(kind: Any) -> bool:
    return get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind)


def _required_arm(kind: Any) -> Any:
    [arm] = [arm for arm in get_args(kind) if arm is not type(None)]
    return arm


def _unpacked(kind: Any) -> tuple[Any, tuple[Any, ...]]:
    """The type under an ``Annotated``, and what it is annotated with (Meta, From, Then, ...)."""
    if get_origin(kind) is Annotated:
        base, *extras = get_args(kind)
        return base, tuple(extras)
    return kind, ()


def _is_struct(kind: Any) -> bool:
    base = _unpacked(kind)[0]
    return isinstance(base, type) and issubclass(base, msgspec.Struct)


def _empty_is_absent(kind: Any) -> bool:
    """Empty text (``${VAR:-}``) counts as not given, but where a field is text that may be empty."""
    base, extras = _unpacked(_required_arm(kind) if _is_optional(kind) else kind)
    if base is not str:
        return True
    return any(isinstance(extra, msgspec.Meta) and (extra.min_length or 0) > 0 for extra in extras)
