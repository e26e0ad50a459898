"""The gateway's YAML configuration: finding the file, references, validation.

The contract is ``docs/configuration.md``, declared once in ``gateway.config.model``: an unknown key,
a wrong type or a value out of bounds is a :class:`ConfigError` naming the key path, and the rest of
the code only ever sees those frozen settings. A file is read whole: every problem found is
reported, one a line (``ConfigErrors``), not only the first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from msgspec.structs import replace

from gateway.carriers.registry import read_backend
from gateway.config.model import DEFAULT_CONFIG_PATH, BackendConfig, GatewayConfig
from gateway.config.reader import ConfigError, ConfigErrors, Conversion
from gateway.config.references import Expansion, expand_references
from gateway.config.rules import RULES

__all__ = ["config_path", "load_config", "parse_config", "parse_section", "with_overrides"]

T = TypeVar("T")


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
    return parse_section(data, GatewayConfig, "", expansion)


def parse_section(data: Any, kind: type[T], path: str, expansion: Expansion | None = None) -> T:
    """One part of a document (a Struct of the model, a carrier's Options) read at ``path``."""
    expansion = expansion or Expansion()
    conversion = Conversion(RULES, {BackendConfig: read_backend}, expansion.problems)
    value = conversion.read(data, kind, path)
    if conversion.problems:
        raise ConfigErrors([_explained(problem, expansion.missing) for problem in conversion.problems])
    return cast(T, value)


def _explained(problem: ConfigError, missing: Mapping[str, str]) -> ConfigError:
    """A required key that a reference left empty says why (the variable is unset, the file empty)."""
    why = missing.get(problem.path)
    if why and problem.problem.startswith("required"):
        return ConfigError(problem.path, f"{problem.problem} ({why})")
    return problem


def with_overrides(config: GatewayConfig, **server: object) -> GatewayConfig:
    """The config with command-line ``server`` values (host, port, workers), validated again."""
    changed = replace(config, server=replace(config.server, **server))
    if problems := list(RULES[GatewayConfig](changed, "")):
        raise ConfigErrors(problems)
    return changed
