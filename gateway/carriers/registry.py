"""Finding carrier plugins by name.

A backend's ``plugin`` names its class in one of two ways: a name registered by an installed
package in the ``smsedge.providers`` entry-point group (the built-in ``mock``, ``tencent`` and
``aliyun`` are registered so by this package's own setup.cfg), or an import path
``package.module:Class``. There is no other list: a new carrier is its own package plus its entry
point.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from functools import cache
from importlib.metadata import entry_points

from gateway.carriers.base import Carrier
from gateway.config.model import BackendConfig
from gateway.config.reader import ConfigError, Reader
from gateway.config.routes import read_regions

__all__ = ["ENTRY_POINT_GROUP", "carrier_class", "read_backend"]

ENTRY_POINT_GROUP = "smsedge.providers"


@cache
def _entry_point_targets() -> dict[str, str]:
    """Installed plugins by name; a name claimed by two different classes is refused."""
    targets: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        known = targets.get(entry.name)
        if known is not None and known != entry.value:
            raise ConfigError("", f"plugin name {entry.name!r} is registered twice ({known}, {entry.value})")
        targets[entry.name] = entry.value
    return targets


def _import(target: str) -> type:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    found = module
    for part in attribute.split("."):
        found = getattr(found, part)
    return found  # type: ignore[return-value]


def carrier_class(plugin: str, path: str = "plugin") -> type[Carrier]:
    """The Carrier subclass a ``plugin`` value names, or a ConfigError at ``path``."""
    target = _entry_point_targets().get(plugin)
    if target is None and ":" in plugin:
        target = plugin
    if target is None:
        known = sorted(_entry_point_targets())
        raise ConfigError(path, f"unknown plugin {plugin!r}; known: {', '.join(known)}")
    try:
        found = _import(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(path, f"cannot load plugin {plugin!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, Carrier)):
        raise ConfigError(path, f"{target} is not a Carrier subclass")
    if inspect.isabstract(found):
        missing = ", ".join(sorted(found.__abstractmethods__))
        raise ConfigError(path, f"{target} does not implement {missing}")
    return found


def read_backend(name: str, reader: Reader) -> BackendConfig:
    """Read the shared keys of a backend section, then let its plugin read the rest."""
    plugin = reader.text("plugin", name)
    cls = carrier_class(plugin, reader.where("plugin"))
    backend = BackendConfig(
        name=name,
        plugin=plugin,
        price_milli=reader.money_milli("price"),
        timeout=reader.ranged("timeout", float, 0.01, 120.0, 5.0),
        retries=reader.ranged("retries", int, 0, 10, 1),
        receipts=reader.get("receipts", bool, False),
        callback_token=reader.text("callback_token", "", allow_empty=True),
        failover_on_timeout=reader.get("failover_on_timeout", bool, False),
        countries=read_regions(reader, "countries"),
        **_circuit(reader.section("circuit")),
    )
    options = cls.read_options(reader)
    reader.done()
    return dataclasses.replace(backend, options=options)


def _circuit(reader: Reader) -> dict[str, float]:
    settings = {
        "circuit_failures": reader.ranged("failures", int, 1, 1000, 5),
        "circuit_cooldown": reader.ranged("cooldown", float, 0.01, 3600.0, 30.0),
    }
    reader.done()
    return settings
