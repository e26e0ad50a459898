"""The gateway's YAML configuration: finding the file, environment expansion, validation.

The contract is ``shared/spec/config.md``: every key there is read (``gateway.config.sections``), an
unknown key or a wrong type is a :class:`ConfigError` naming the key path, and the rest of the code
only ever sees the frozen settings of ``gateway.config.model``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import yaml

from gateway.account_names import name_key
from gateway.config import sections
from gateway.config.model import DEFAULT_CONFIG_PATH, GatewayConfig
from gateway.config.reader import ConfigError, Reader

__all__ = ["config_path", "expand_env", "load_config", "parse_config", "with_overrides"]

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def config_path(explicit: str | None = None) -> str:
    """``--config``, else ``$SMS_EDGE_CONFIG``, else the embedded default."""
    return explicit or os.environ.get("SMS_EDGE_CONFIG") or DEFAULT_CONFIG_PATH


def expand_env(node: Any) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` inside the parsed document's strings.

    Substituting after parsing keeps a value literal (``#``, ``: `` or leading zeros in a secret stay
    as they are); readers of numbers and flags accept the text. A string naming an unset variable
    with no default becomes a missing value, so a required key reports ``required``.
    """
    if isinstance(node, dict):
        return {key: expand_env(value) for key, value in node.items()}
    if isinstance(node, list):
        return [expand_env(value) for value in node]
    if not isinstance(node, str) or "${" not in node:
        return node
    unset = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unset
        value = os.environ.get(match.group(1))
        if value:
            return value
        if match.group(2) is None:
            unset = True
            return ""
        return match.group(2)

    expanded = _ENV_REFERENCE.sub(replace, node)
    return None if unset else expanded


def load_config(path: str | os.PathLike[str] | None = None) -> GatewayConfig:
    """Read, expand and validate the config file; every failure is one ConfigError line."""
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
    return parse_config(expand_env(data))


def parse_config(data: Any) -> GatewayConfig:
    """Validate a parsed YAML document into a GatewayConfig."""
    root = Reader(data)
    config = GatewayConfig(
        server=sections.server(root.section("server")),
        store=sections.store(root.section("store")),
        redis=sections.redis(root.section("redis")),
        ratelimit=sections.ratelimit(root.section("ratelimit")),
        providers=sections.providers(root.section("providers")),
        templates=sections.templates(root.section("templates")),
        metrics=sections.metrics(root.section("metrics")),
        logging=sections.logging_section(root.section("logging")),
        accounts=tuple(root.items("accounts", sections.account)),
        admin=sections.admin(root.section("admin")),
    )
    root.done()
    _cross_check(config)
    return config


def with_overrides(config: GatewayConfig, **server: object) -> GatewayConfig:
    """The config with command-line ``server`` values (host, port, workers), validated again."""
    changed = dataclasses.replace(config, server=dataclasses.replace(config.server, **server))
    _cross_check(changed)
    return changed


def _cross_check(config: GatewayConfig) -> None:
    """Rules that span sections."""
    for index, seed in enumerate(config.accounts):
        for position, name in enumerate(seed.providers):
            if name not in config.providers.backends:
                raise ConfigError(f"accounts[{index}].providers[{position}]", f"unknown backend {name!r}")
    if config.server.workers > 1 and config.ratelimit.backend == "memory":
        raise ConfigError("server.workers", "more than 1 worker needs ratelimit.backend: redis")
    shared = (config.store.backend == "redis" or config.ratelimit.backend == "redis"
              or config.server.workers > 1)
    if shared and not config.server.secret_key:
        # Numbers are found again (windows, receipts) by a keyed hash: every process must agree.
        raise ConfigError("server.secret_key", "required when state is shared (redis or workers > 1)")
    if config.server.secret_key and len(config.server.secret_key) < 16:
        raise ConfigError("server.secret_key", "must be at least 16 characters")
    keys = [seed.api_key for seed in config.accounts]
    for index, key in enumerate(keys):
        if keys.index(key) != index:
            raise ConfigError(f"accounts[{index}].api_key", "duplicate api_key")
    names = [name_key(seed.name) for seed in config.accounts]  # Shop, SHOP and ＳＨＯＰ are one name
    for index, name in enumerate(names):
        if (first := names.index(name)) != index:
            raise ConfigError(f"accounts[{index}].name", f"the same name as accounts[{first}]")
