"""Finding carrier plugins by name.

A backend's ``plugin`` names its class in one of two ways: a name registered by an installed
package in the ``smsedge.providers`` entry-point group (the built-in ``mock``, ``tencent`` and
``aliyun`` are registered so by this package's own setup.cfg), or an import path
``package.module:Class``. There is no other list: a new carrier is its own package plus its entry
point.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from gateway.carriers.base import Carrier
from gateway.config.model import BackendConfig
from gateway.config.reader import FAILED, ConfigError, Conversion

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


def _import(target: str) -> object:
    """What ``package.module:Name`` names; the caller checks that it is a Carrier subclass."""
    module_name, _, attribute = target.partition(":")
    found: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def carrier_class(plugin: str, path: str = "plugin") -> type[Carrier[Any]]:
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


def read_backend(conversion: Conversion, data: Any, path: str, name: str) -> Any:
    """A backend section: the keys every backend shares (``BackendConfig``), then its plugin's
    ``Options`` from the rest; FAILED once its problems are noted (``gateway.config.reader``)."""
    section = conversion.section(data, path)
    if section is None:
        return FAILED
    shared = section.fields(BackendConfig, leave=("name", "options"))  # those two are not keys
    if "plugin" in section.refused:
        return FAILED
    plugin = shared.pop("plugin", name)
    try:
        cls = carrier_class(plugin, section.where("plugin"))
    except ConfigError as problem:
        conversion.note(problem)  # its other keys are not known: not refused as unknown
        return FAILED
    options = section.fields(cls.Options)
    if not section.close():
        return FAILED
    backend = BackendConfig(name=name, plugin=plugin, options=cls.Options(**options), **shared)
    return conversion.checked(backend, path)
