"""The gateway's YAML configuration: finding the file, references, validation.

The contract is ``docs/configuration.md``: every key there is read (``gateway.config.sections``), an
unknown key or a wrong type is a :class:`ConfigError` naming the key path, and the rest of the code
only ever sees the frozen settings of ``gateway.config.model``. A file is read whole: every problem
found is reported, one a line (``ConfigErrors``), not only the first.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from gateway.accounts.names import name_key
from gateway.config import sections
from gateway.config.model import DEFAULT_CONFIG_PATH, GatewayConfig
from gateway.config.reader import ConfigError, ConfigErrors, Reader, checked, note, noting_problems
from gateway.config.references import Expansion, expand_references

__all__ = ["config_path", "load_config", "parse_config", "with_overrides"]

# Read in this order, so problems are listed as the file is usually written.
_SECTIONS = (
    ("server", sections.server), ("store", sections.store), ("redis", sections.redis),
    ("ratelimit", sections.ratelimit), ("providers", sections.providers),
    ("templates", sections.templates), ("metrics", sections.metrics),
    ("logging", sections.logging_section),
)


def config_path(explicit: str | None = None) -> str:
    """``--config``, else ``$SMS_EDGE_CONFIG``, else the embedded default."""
    return explicit or os.environ.get("SMS_EDGE_CONFIG") or DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None) -> GatewayConfig:
    """Read, expand and validate the config file; every failure is a ConfigError, one line a problem."""
    location = Path(config_path(str(path) if path else None))
    try:
        text = location.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {location}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError("", f"{location}: invalid YAML{where}") from None
    return parse_config(*expand_references(data))


def parse_config(data: Any, expansion: Expansion | None = None) -> GatewayConfig:
    """Validate a parsed YAML document into a GatewayConfig, or raise ConfigErrors listing every
    problem (``expansion``: what expanding its references found)."""
    expansion = expansion or Expansion()
    with noting_problems(expansion.problems) as problems:
        root = Reader(data)
        parts = {name: checked(partial(read, root.section(name)), None) for name, read in _SECTIONS}
        parts["accounts"] = tuple(root.items("accounts", sections.account))
        parts["admin"] = checked(partial(sections.admin, root.section("admin")), None)
        root.done()
        if not problems:  # rules that span sections, once every section could be read
            config = GatewayConfig(**parts)
            _cross_check(config)
    if problems:
        raise ConfigErrors([_explained(problem, expansion.missing) for problem in problems])
    return config


def _explained(problem: ConfigError, missing: Mapping[str, str]) -> ConfigError:
    """A required key that a reference left empty says why (the variable is unset, the file empty)."""
    why = missing.get(problem.path)
    if why and problem.problem.startswith("required"):
        return ConfigError(problem.path, f"{problem.problem} ({why})")
    return problem


def with_overrides(config: GatewayConfig, **server: object) -> GatewayConfig:
    """The config with command-line ``server`` values (host, port, workers), validated again."""
    changed = dataclasses.replace(config, server=dataclasses.replace(config.server, **server))
    _cross_check(changed)
    return changed


def _cross_check(config: GatewayConfig) -> None:
    """Rules that span sections (each problem noted: see gateway.config.reader)."""
    for index, seed in enumerate(config.accounts):
        for position, name in enumerate(seed.providers):
            if name not in config.providers.backends:
                note(ConfigError(f"accounts[{index}].providers[{position}]", f"unknown backend {name!r}"))
    if config.server.workers > 1 and config.ratelimit.backend == "memory":
        note(ConfigError("server.workers", "more than 1 worker needs ratelimit.backend: redis"))
    shared = (config.store.backend == "redis" or config.ratelimit.backend == "redis"
              or config.server.workers > 1)
    if shared and not config.server.secret_key:
        # Numbers are found again (windows, receipts) by a keyed hash: every process must agree.
        note(ConfigError("server.secret_key", "required when state is shared (redis or workers > 1)"))
    if not config.server.secret_key and (taking := [b.name for b in config.providers.backends.values()
                                                    if b.receipts]):
        # A receipt finds its record by the number's keyed hash: a key made per process would
        # lose every send made before a restart (it would wait for a receipt that never matches).
        note(ConfigError("server.secret_key",
                         f"required when a backend takes delivery receipts ({', '.join(taking)})"))
    if config.server.secret_key and len(config.server.secret_key) < 16:
        note(ConfigError("server.secret_key", "must be at least 16 characters"))
    keys = [seed.api_key for seed in config.accounts]
    for index, key in enumerate(keys):
        if keys.index(key) != index:
            note(ConfigError(f"accounts[{index}].api_key", "duplicate api_key"))
    names = [name_key(seed.name) for seed in config.accounts]  # Shop, SHOP and ＳＨＯＰ are one name
    for index, name in enumerate(names):
        if (first := names.index(name)) != index:
            note(ConfigError(f"accounts[{index}].name", f"the same name as accounts[{first}]"))
