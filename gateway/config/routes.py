"""Reading ``providers.routes`` (and a backend's ``countries``): which carrier takes which number.

Every mistake an operator can make here is refused at ``check-config`` with its key path: a route
naming an unknown backend, a split whose weights do not sum to 100, a country code the numbering
plan does not know, a prefix that is not E.164, a route with no target or with two.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

from gateway.config.model import BackendConfig, RouteConfig, RouteMatch
from gateway.config.reader import ConfigError, Reader, note

__all__ = ["STRATEGIES", "read_regions", "read_routes"]

STRATEGIES = ("cheapest",)
_TARGETS = ("to", "split", "strategy")
_E164_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")


def read_regions(reader: Reader, key: str) -> frozenset[str]:
    """ISO 3166 regions as the numbering plan knows them (``HK``, ``cn`` → ``CN``)."""
    regions = [code.upper() for code in reader.strings(key)]
    for index, code in enumerate(regions):
        if code not in phonenumbers.SUPPORTED_REGIONS:
            note(ConfigError(f"{reader.where(key)}[{index}]", f"unknown country code {code!r}"))
    return frozenset(regions)


def read_routes(reader: Reader, backends: Mapping[str, BackendConfig]) -> tuple[RouteConfig, ...]:
    routes = reader.items("routes", lambda data, path: _route(data, path, backends))
    # An unnamed route is known by its place in the list (1-based), in metrics and on /status.
    return tuple(
        route if route.name else dataclasses.replace(route, name=f"#{position}")
        for position, route in enumerate(routes, start=1)
    )


def _route(data: Any, path: str, backends: Mapping[str, BackendConfig]) -> RouteConfig:
    reader = Reader(data, path)
    given = [key for key in _TARGETS if reader.data.get(key) is not None]
    if len(given) != 1:
        raise ConfigError(path, "needs exactly one of to, split, strategy")
    route = RouteConfig(
        name=reader.text("name", ""),
        match=_match(reader.section("match")),
        to=reader.text("to", None),
        split=_split(reader.section("split")) if given == ["split"] else (),
        strategy=reader.choice("strategy", STRATEGIES, None) if given == ["strategy"] else None,
    )
    reader.done()
    named = [(reader.where("to"), route.to)] if route.to else []
    named += [(reader.where(f"split.{name}"), name) for name, _ in route.split]
    for where, name in named:
        if name not in backends:
            raise ConfigError(where, f"unknown backend {name!r}")
    return route


def _match(reader: Reader) -> RouteMatch:
    match = RouteMatch(
        countries=read_regions(reader, "country"),
        prefixes=reader.strings("prefix"),
        templates=frozenset(reader.strings("template")),
        accounts=frozenset(reader.strings("account")),
    )
    reader.done()
    for index, prefix in enumerate(match.prefixes):
        if not _E164_PREFIX.fullmatch(prefix):
            raise ConfigError(f"{reader.where('prefix')}[{index}]", "must be an E.164 prefix: + and digits")
    return match


def _split(reader: Reader) -> tuple[tuple[str, int], ...]:
    weights = tuple((str(name), reader.ranged(str(name), int, 1, 100)) for name in reader.data)
    if sum(weight for _, weight in weights) != 100:
        raise ConfigError(reader.path, "weights must sum to 100")
    return weights
