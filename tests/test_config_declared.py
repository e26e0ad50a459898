"""The config is declared once: each section's fields, defaults and bounds are its msgspec Struct.

Nothing else restates them: a key left out reads as the declared default, and a number is refused
exactly outside the bounds its declaration gives (with those bounds in the message).
"""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

import msgspec
import pytest

from gateway.carriers.registry import carrier_class
from gateway.config.loader import parse_config
from gateway.config.model import (
    AdminConfig,
    BackendConfig,
    BucketConfig,
    CircuitConfig,
    GatewayConfig,
    LoggingConfig,
    MetricsConfig,
    RateLimitConfig,
    RedisConfig,
    ServerConfig,
    StoreConfig,
    WindowConfig,
)
from gateway.config.reader import ConfigError
from tests.conftest import merge

MINIMAL = {"providers": {"backends": {"mock": {"price": 0.05}}}}
MOCK_OPTIONS = carrier_class("mock").Options
#: Where each struct sits in a document, for the bound checks.
PLACES: dict[str, type[msgspec.Struct]] = {
    "server": ServerConfig,
    "store": StoreConfig,
    "redis": RedisConfig,
    "logging": LoggingConfig,
    "ratelimit.account": BucketConfig,
    "ratelimit.phone[0]": WindowConfig,
    "providers.backends.mock": BackendConfig,
    "providers.backends.mock.circuit": CircuitConfig,
    "providers.backends.mock ": MOCK_OPTIONS,  # the mock's own options, in the same section
}


def _bounds(annotation: Any) -> tuple[Any, Any] | None:
    """(ge, le) of a number field, from its msgspec Meta; None when it is not a plain number."""
    if get_origin(annotation) is not Annotated:
        return None
    base, *extras = get_args(annotation)
    metas = [extra for extra in extras if isinstance(extra, msgspec.Meta)]
    if base not in (int, float) or len(extras) != len(metas):  # a custom conversion: its own rules
        return None
    ge = next((meta.ge for meta in metas if meta.ge is not None), None)
    le = next((meta.le for meta in metas if meta.le is not None), None)
    return ge, le


def _numbers() -> list[tuple[str, str, type, Any, Any]]:
    found = []
    for place, struct in PLACES.items():
        for field in msgspec.structs.fields(struct):
            if (bounds := _bounds(field.type)) is not None:
                kind = get_args(field.type)[0]
                found.append((place.strip(), field.encode_name, kind, *bounds))
    return found


NUMBERS = _numbers()


def _document(place: str, key: str, value: Any) -> dict[str, Any]:
    if place == "ratelimit.phone[0]":
        return merge(MINIMAL, {"ratelimit": {"phone": [{"limit": 1, "seconds": 60, key: value}]}})
    section: dict[str, Any] = {"rate": 20, "burst": 40} if place == "ratelimit.account" else {}
    section[key] = value
    for part in reversed(place.split(".")):
        section = {part: section}
    return merge(MINIMAL, section)


def _problems(document: dict[str, Any]) -> list[str]:
    try:
        parse_config(document)
    except ConfigError as caught:
        return str(caught).splitlines()
    return []


def test_every_number_of_every_section_declares_both_bounds():
    unbounded = [f"{place}.{key}" for place, key, _, ge, le in NUMBERS if ge is None or le is None]
    assert len(NUMBERS) >= 15 and unbounded == []


@pytest.mark.parametrize(
    ("place", "key", "kind", "ge", "le"), NUMBERS, ids=[f"{place}.{key}" for place, key, *_ in NUMBERS]
)
def test_a_number_is_refused_exactly_outside_its_declared_bounds(place, key, kind, ge, le):
    step = 1 if kind is int else min(0.001, ge / 10 if ge else 0.001)
    message = f"{place}.{key}: must be between {ge} and {le}"
    for outside in (ge - step, le + step):
        assert _problems(_document(place, key, outside)) == [message]
    for inside in (ge, le):
        assert not [
            line
            for line in _problems(_document(place, key, inside))
            if line.startswith(f"{place}.{key}: must be")
        ]  # a rule may still object


def test_a_key_left_out_reads_as_its_declared_default():
    config = parse_config(MINIMAL)
    sections = (
        ServerConfig(),
        StoreConfig(),
        RedisConfig(),
        RateLimitConfig(),
        MetricsConfig(),
        LoggingConfig(),
        AdminConfig(),
    )
    assert (
        config.server,
        config.store,
        config.redis,
        config.ratelimit,
        config.metrics,
        config.logging,
        config.admin,
    ) == sections
    mock = BackendConfig(name="mock", plugin="mock", price_milli=50, options=MOCK_OPTIONS())
    assert config.providers.backends == {"mock": mock}
    assert (mock.circuit_failures, mock.circuit_cooldown) == (
        CircuitConfig().failures,
        CircuitConfig().cooldown,
    )


def test_the_settings_are_frozen_structs_that_refuse_unknown_fields():
    structs = [GatewayConfig, *{struct for struct in PLACES.values()}]
    loose = [
        struct.__name__
        for struct in structs
        if not (struct.__struct_config__.frozen and struct.__struct_config__.forbid_unknown_fields)
    ]
    assert loose == []
