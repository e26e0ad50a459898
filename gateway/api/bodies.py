"""JSON request bodies: duplicate keys refused, and what the decoder refuses said in the API's words.

JSON parsers keep a repeated key's last value silently, so ``{"amount": 1, "amount": 1000}`` would
credit 1000 while a proxy or a reviewer reads 1: every body is refused with a repeated key at any
depth (``docs/api.md``), by a count cheap enough for every send. msgspec's refusals become the API's
Chinese, naming the field by its path (:func:`body_error`).
How the count works and when it parses again: (docs/sending.md, "The body").
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec

from gateway.errors import ApiError, invalid
from gateway.phones import scrub

__all__ = ["MALFORMED", "NOT_AN_OBJECT", "body_error", "decode_body", "refuse_repeated_keys", "type_given"]

T = TypeVar("T")

MALFORMED = "请求体不是合法的 JSON"
NOT_AN_OBJECT = "请求体必须是 JSON 对象"
_KEY_END = re.compile(rb'"\s*:')
_NOT_GIVEN = object()  # a required field's default: a field holding anything was given
_NESTED = (dict, msgspec.Struct)


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def decode_body(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """``raw`` decoded into the decoder's model, or the 400 that says why not."""
    try:
        body = decoder.decode(raw)
    except msgspec.DecodeError as exc:  # malformed JSON and wrong shapes alike
        raise body_error(exc) from None
    refuse_repeated_keys(raw, body)
    return body


def refuse_repeated_keys(raw: bytes, decoded: object) -> None:
    """400 when an object in ``raw`` (which decoded to ``decoded``) names a key twice."""
    held = _keys_held(decoded)
    # Every colon first (a key has one; most bodies have no other), then the keys' own.
    if raw.count(b":") <= held or len(_KEY_END.findall(raw)) <= held:
        return
    try:
        json.loads(raw, object_pairs_hook=_unrepeated)
    except _Repeated as repeated:
        raise invalid(f"JSON 对象中有重复的键 {scrub(repeated.key[:32])!r}") from None
    except RecursionError:
        raise invalid("请求体嵌套过深") from None
    except ValueError:  # what the decoder took, too long for this one (a number of 4,300+ digits)
        raise invalid(MALFORMED) from None


def _unrepeated(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Repeated(key)
        seen.add(key)
    return {}  # only the keys matter


@functools.cache
def _defaults(model: type[msgspec.Struct]) -> tuple[object, ...]:
    """Each field's default, in the fields' order (an unset field is at its default, UNSET)."""

    def default(field: msgspec.structs.FieldInfo) -> object:
        if field.default_factory is not msgspec.NODEFAULT:
            return field.default_factory()
        return _NOT_GIVEN if field.required else field.default

    return tuple(default(field) for field in msgspec.structs.fields(model))


def _keys_held(decoded: object) -> int:
    """How many keys the JSON ``decoded`` came from surely had: a struct's field at its default may
    have been left out, and lists are not looked into. A loop, not a recursion: a plain body may
    be nested as deep as the JSON parser allows."""
    held, inside = 0, [decoded]
    while inside:
        value = inside.pop()
        if isinstance(value, dict):
            held += len(value)
            inside += [item for item in value.values() if isinstance(item, _NESTED)]
        elif isinstance(value, msgspec.Struct):
            for name, default in zip(value.__struct_fields__, _defaults(type(value)), strict=True):
                field = getattr(value, name)
                if field != default:
                    held += 1
                    if isinstance(field, _NESTED):
                        inside.append(field)
    return held


# -- msgspec's words, in the API's ----------------------------------------------------------------

_TYPE_WANTED = {
    "str": "字符串",
    "int": "整数",
    "float": "数字",
    "bool": "布尔值",
    "object": "对象",
    "array": "数组",
    "null": " null",
}
_TYPE_GIVEN = {**_TYPE_WANTED, "int": "数字"}  # a JSON number is a number, whole or not
#: msgspec's name for the JSON type of a decoded value.
_JSON_TYPE = {
    str: "str",
    bool: "bool",
    int: "int",
    float: "float",
    list: "array",
    dict: "object",
    type(None): "null",
}
_COMPARED = {">": "应大于", ">=": "应不小于", "<": "应小于", "<=": "应不大于"}
_AT = re.compile(r" - at `(?P<at>[^`]*)`(?: in `(?P<within>[^`]*)`)?$")
_INDEX = re.compile(r"\[(\d+)\]")


def body_error(exc: msgspec.DecodeError) -> ApiError:
    """The 400 for a body msgspec refused, in Chinese, naming the field (never msgspec's text)."""
    if not isinstance(exc, msgspec.ValidationError):
        return invalid(MALFORMED)
    text = str(exc)
    at = _AT.search(text)
    what = text[: at.start()] if at else text
    path = (at["within"] or at["at"]) if at else "$"
    field = _field(path)
    if at and at["within"]:
        field += " 的键"
    for pattern, say in _SAYINGS:
        match = pattern.fullmatch(what)
        if match:
            return invalid(say(field, path, match))
    return invalid(f"{field} 无效" if path != "$" else "请求体无效")


def type_given(value: Any) -> str:
    """What a decoded JSON value is, in the words a refusal of msgspec's gets."""
    return _TYPE_GIVEN.get(_JSON_TYPE.get(type(value), ""), "其他类型")


def _field(path: str) -> str:
    """``$.ratelimit.rate`` → ``ratelimit.rate``; ``$.providers[1]`` → ``providers 第 2 项``."""
    name = path.removeprefix("$").removeprefix(".")
    name = _INDEX.sub(lambda index: f" 第 {int(index[1]) + 1} 项", name)
    return scrub(name.replace("[...]", " 的值")) or "请求体"


def _within(path: str, key: str) -> str:
    """A key of the object at ``path``, by its whole path."""
    parent = _field(path) if path != "$" else ""
    return scrub(f"{parent}.{key}" if parent else key)


def _types(names: str, words: dict[str, str]) -> str:
    wanted = [name.strip() for name in names.split("|")]
    if "int" in wanted and "float" in wanted:
        wanted.remove("int")
    return "或".join(dict.fromkeys(words.get(name, name) for name in wanted))


def _bound(text: str) -> str:
    try:
        return format(Decimal(text).normalize(), "f")
    except InvalidOperation:
        return text


def _wrong_type(field: str, path: str, match: re.Match[str]) -> str:
    if path == "$" and match["wanted"] == "object":
        return NOT_AN_OBJECT
    return f"{field} 应为{_types(match['wanted'], _TYPE_WANTED)},收到{_types(match['given'], _TYPE_GIVEN)}"


def _length(field: str, path: str, match: re.Match[str]) -> str:
    kind, at_least, size = match["kind"], match["op"] == ">=", match["size"]
    if kind == "str":
        return (
            f"{field} 不能为空"
            if at_least and size == "1"
            else (f"{field} 至少 {size} 个字符" if at_least else f"{field} 最长 {size} 个字符")
        )
    unit = "项" if kind == "array" else "个键"
    return f"{field} {'至少' if at_least else '最多'} {size} {unit}"


Saying = Callable[[str, str, re.Match[str]], str]
_SAYINGS: tuple[tuple[re.Pattern[str], Saying], ...] = (
    (re.compile(r"Expected `(?P<wanted>[^`]+)`, got `(?P<given>[^`]+)`"), _wrong_type),
    (re.compile(r"Expected `(?P<kind>\w+)` of length (?P<op>[<>]=) (?P<size>\d+)"), _length),
    (
        re.compile(r"Expected `\w+` (?P<op>[<>]=?) (?P<bound>\S+)"),
        lambda field, _, match: f"{field} {_COMPARED[match['op']]} {_bound(match['bound'])}",
    ),
    (
        re.compile(r"Object missing required field `(?P<key>[^`]+)`"),
        lambda _, path, match: f"缺少 {_within(path, match['key'])}",
    ),
    (
        re.compile(r"Object contains unknown field `(?P<key>[^`]+)`"),
        lambda _, path, match: f"未知参数 {_within(path, match['key'][:32])!r}",
    ),
    (re.compile(r"Invalid enum value .*"), lambda field, *_: f"{field} 取值无效"),
    (re.compile(r"Expected `str` matching regex .*"), lambda field, *_: f"{field} 格式无效"),
    (re.compile(r"(?:Number|Integer value) out of range"), lambda field, *_: f"{field} 超出范围"),
)
