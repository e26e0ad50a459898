"""The gateway's YAML configuration: environment expansion, validation, frozen settings.

The contract is ``shared/spec/config.md``: every key there is read here, an unknown key or a wrong
type is a :class:`ConfigError` naming the key path, and the rest of the code only ever sees the
frozen dataclasses below, never raw YAML.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from gateway.settings_reader import ConfigError, Reader

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AccountSeed",
    "BackendConfig",
    "BucketConfig",
    "ConfigError",
    "GatewayConfig",
    "TemplateConfig",
    "config_path",
    "load_config",
    "parse_config",
    "with_overrides",
]

DEFAULT_CONFIG_PATH = "config/gateway.yaml"
VERIFICATION_STATUSES = ("approved", "pending", "rejected")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class BucketConfig:
    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class WindowConfig:
    limit: int
    seconds: int


DEFAULT_WINDOWS = (WindowConfig(1, 60), WindowConfig(5, 3600), WindowConfig(10, 86400))


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 65536
    timezone: str = "Asia/Shanghai"
    workers: int = 1
    secret_key: str = ""  # keys the hash of phone numbers; empty: random per process


    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: str = "sqlite"
    path: str = "data/sms-edge.db"
    timeout: float = 5.0  # seconds to wait for a locked database before answering 503


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "smsedge:"
    timeout: float = 1.0  # seconds per Redis command: an outage is an error, never a hang


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    backend: str = "memory"
    on_backend_error: str = "allow"
    account: BucketConfig = BucketConfig(rate=20.0, burst=40)
    phone: tuple[WindowConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One carrier backend: the keys every plugin shares, plus the plugin's own parsed options."""

    name: str
    plugin: str
    price_milli: int
    timeout: float
    retries: int
    receipts: bool
    callback_token: str
    failover_on_timeout: bool = False  # a timed-out send may have gone out: retrying risks a duplicate
    circuit_failures: int = 5  # consecutive failed calls that open the circuit
    circuit_cooldown: float = 30.0  # seconds open before one trial call
    options: Any = None


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    default: str
    failover: tuple[str, ...]
    backends: dict[str, BackendConfig]


@dataclass(frozen=True, slots=True)
class TemplateConfig:
    params: tuple[str, ...] = ()
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = True
    path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True, slots=True)
class AccountSeed:
    name: str
    api_key: str
    api_secret: str
    balance_milli: int
    verification_status: str
    providers: tuple[str, ...]
    ratelimit: BucketConfig | None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    server: ServerConfig
    store: StoreConfig
    redis: RedisConfig
    ratelimit: RateLimitConfig
    providers: ProvidersConfig
    templates: dict[str, TemplateConfig]
    metrics: MetricsConfig
    logging: LoggingConfig
    accounts: tuple[AccountSeed, ...]

    def template(self, template_id: str) -> TemplateConfig:
        return self.templates.get(template_id) or TemplateConfig()


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
        server=_server(root.section("server")),
        store=_store(root.section("store")),
        redis=_redis(root.section("redis")),
        ratelimit=_ratelimit(root.section("ratelimit")),
        providers=_providers(root.section("providers")),
        templates=_templates(root.section("templates")),
        metrics=_metrics(root.section("metrics")),
        logging=_logging(root.section("logging")),
        accounts=tuple(root.items("accounts", _account)),
    )
    root.done()
    _cross_check(config)
    return config


def _server(reader: Reader) -> ServerConfig:
    defaults = ServerConfig()
    server = ServerConfig(
        host=reader.text("host", defaults.host),
        port=reader.ranged("port", int, 0, 65535, defaults.port),
        max_body_bytes=reader.ranged("max_body_bytes", int, 1024, 64 << 20, defaults.max_body_bytes),
        timezone=reader.text("timezone", defaults.timezone),
        workers=reader.ranged("workers", int, 1, 256, defaults.workers),
        secret_key=reader.text("secret_key", "", allow_empty=True),
    )
    reader.done()
    try:
        ZoneInfo(server.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(reader.where("timezone"), "unknown time zone") from None
    return server


def _store(reader: Reader) -> StoreConfig:
    defaults = StoreConfig()
    store = StoreConfig(
        backend=reader.choice("backend", ("sqlite", "redis"), defaults.backend),
        path=reader.text("path", defaults.path),
        timeout=reader.ranged("timeout", float, 0.01, 300.0, defaults.timeout),
    )
    reader.done()
    return store


def _redis(reader: Reader) -> RedisConfig:
    defaults = RedisConfig()
    redis = RedisConfig(
        url=reader.text("url", defaults.url),
        key_prefix=reader.text("key_prefix", defaults.key_prefix, allow_empty=True),
        timeout=reader.ranged("timeout", float, 0.01, 60.0, defaults.timeout),
    )
    reader.done()
    if not redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(reader.where("url"), "must be a redis://, rediss:// or unix:// URL")
    return redis


def bucket(data: Any, path: str) -> BucketConfig:
    reader = Reader(data, path)
    config = BucketConfig(
        rate=reader.ranged("rate", float, 0.001, 1e6),
        burst=reader.ranged("burst", int, 1, 10**9),
    )
    reader.done()
    return config


def _window(data: Any, path: str) -> WindowConfig:
    reader = Reader(data, path)
    window = WindowConfig(
        limit=reader.ranged("limit", int, 1, 10**6),
        seconds=reader.ranged("seconds", int, 1, 31 * 86400),
    )
    reader.done()
    return window


def _ratelimit(reader: Reader) -> RateLimitConfig:
    defaults = RateLimitConfig()
    account = reader.data.get("account")
    config = RateLimitConfig(
        backend=reader.choice("backend", ("memory", "redis"), defaults.backend),
        on_backend_error=reader.choice("on_backend_error", ("allow", "deny"), "allow"),
        account=bucket(account, reader.where("account")) if account is not None else defaults.account,
        # Omitted: the contract's anti-bombing windows. An empty list turns them off.
        phone=tuple(reader.items("phone", _window)) if "phone" in reader.data else DEFAULT_WINDOWS,
    )
    reader.section("account")
    reader.done()
    return config


def _providers(reader: Reader) -> ProvidersConfig:
    from gateway.registry import read_backend  # plugins validate their own sections

    backends_reader = reader.section("backends")
    backends = {
        str(name): read_backend(str(name), backends_reader.section(str(name)))
        for name in backends_reader.data
    }
    if not backends:
        raise ConfigError(backends_reader.path, "at least one backend is required")
    config = ProvidersConfig(
        default=reader.text("default", next(iter(backends))),
        failover=reader.strings("failover"),
        backends=backends,
    )
    reader.done()
    for index, name in enumerate((config.default, *config.failover)):
        if name not in backends:
            key = "default" if index == 0 else f"failover[{index - 1}]"
            raise ConfigError(reader.where(key), f"unknown backend {name!r}")
    return config


def _templates(reader: Reader) -> dict[str, TemplateConfig]:
    templates = {}
    for template_id in list(reader.data):
        entry = reader.section(str(template_id))
        ids = entry.section("ids")
        templates[str(template_id)] = TemplateConfig(
            params=entry.strings("params"),
            ids={str(name): ids.text(str(name)) for name in ids.data},
        )
        ids.done()
        entry.done()
    return templates


def _metrics(reader: Reader) -> MetricsConfig:
    config = MetricsConfig(
        enabled=reader.get("enabled", bool, True),
        path=reader.text("path", "/metrics"),
    )
    reader.done()
    if not config.path.startswith("/") or config.path.startswith("/api/"):
        raise ConfigError(reader.where("path"), "must start with / and lie outside /api/")
    return config


def _logging(reader: Reader) -> LoggingConfig:
    config = LoggingConfig(
        level=reader.choice("level", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        format=reader.choice("format", ("json", "text"), "json"),
    )
    reader.done()
    return config


def _account(data: Any, path: str) -> AccountSeed:
    reader = Reader(data, path)
    limits = reader.data.get("ratelimit")
    seed = AccountSeed(
        name=reader.text("name"),
        api_key=reader.text("api_key"),
        api_secret=reader.text("api_secret"),
        balance_milli=reader.money_milli("balance", 0),
        verification_status=reader.choice("verification_status", VERIFICATION_STATUSES, "approved"),
        providers=reader.strings("providers"),
        ratelimit=bucket(limits, reader.where("ratelimit")) if limits is not None else None,
    )
    reader.section("ratelimit")
    reader.done()
    if len(seed.api_secret) < 12:
        raise ConfigError(reader.where("api_secret"), "must be at least 12 characters")
    return seed


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
