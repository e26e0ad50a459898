"""Reading each section of the YAML document into its settings, with key-path errors."""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.accounts.credentials import hash_secret
from gateway.accounts.names import checked_name
from gateway.carriers.registry import read_backend  # plugins validate their own sections
from gateway.config.model import (
    DEFAULT_WINDOWS,
    REDIS_MODES,
    VERIFICATION_STATUSES,
    AccountSeed,
    AdminConfig,
    AdminToken,
    BucketConfig,
    LoggingConfig,
    MetricsConfig,
    ProvidersConfig,
    RateLimitConfig,
    RedisConfig,
    ServerConfig,
    StoreConfig,
    TemplateConfig,
    TlsConfig,
    WindowConfig,
)
from gateway.config.reader import ConfigError, Reader, checked, note
from gateway.config.routes import read_routes
from gateway.process.tls import server_context
from gateway.ratelimit.backends import LIMITERS
from gateway.store.backends import STORES

__all__ = ["account", "admin", "bucket", "logging_section", "metrics", "providers", "ratelimit", "redis",
           "server", "store", "templates", "tls"]

# Shown inside shell and PHP strings on the docs page: scheme, host, port and a plain path only.
_PUBLIC_URL = re.compile(r"https?://[A-Za-z0-9\-.]{1,253}(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~/]*)?")


def server(reader: Reader) -> ServerConfig:
    defaults = ServerConfig()
    server = ServerConfig(
        host=reader.text("host", defaults.host),
        port=reader.ranged("port", int, 0, 65535, defaults.port),
        max_body_bytes=reader.ranged("max_body_bytes", int, 1024, 64 << 20, defaults.max_body_bytes),
        timezone=reader.text("timezone", defaults.timezone),
        workers=reader.ranged("workers", int, 1, 256, defaults.workers),
        header_timeout=reader.ranged("header_timeout", float, 0.1, 3600.0, defaults.header_timeout),
        body_timeout=reader.ranged("body_timeout", float, 0.1, 3600.0, defaults.body_timeout),
        secret_key=reader.text("secret_key", "", allow_empty=True),
        public_url=reader.text("public_url", "", allow_empty=True).rstrip("/"),
        tls=checked(lambda: tls(reader.section("tls")), TlsConfig()),
    )
    reader.done()
    if server.public_url and not _PUBLIC_URL.fullmatch(server.public_url):
        raise ConfigError(reader.where("public_url"), "must be an http:// or https:// URL")
    if server.tls.enabled and server.public_url.startswith("http://"):
        # The docs page would show readers examples that send their credentials in the clear.
        raise ConfigError(reader.where("public_url"), "must be an https:// URL when server.tls is on")
    try:
        ZoneInfo(server.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(reader.where("timezone"), "unknown time zone") from None
    return server


def tls(reader: Reader) -> TlsConfig:
    paths = {key: reader.text(key, "", allow_empty=True) for key in ("cert", "key", "client_ca")}
    config = TlsConfig(**paths)
    reader.done()
    server_context(config)  # the files are checked by building what the server will serve with
    return config


def store(reader: Reader) -> StoreConfig:
    defaults = StoreConfig()
    store = StoreConfig(
        backend=reader.choice("backend", tuple(STORES), defaults.backend),
        path=reader.text("path", defaults.path),
        timeout=reader.ranged("timeout", float, 0.01, 300.0, defaults.timeout),
    )
    reader.done()
    return store


def redis(reader: Reader) -> RedisConfig:
    defaults = RedisConfig()
    redis = RedisConfig(
        mode=reader.choice("mode", REDIS_MODES, defaults.mode),
        url=reader.text("url", defaults.url),
        sentinels=tuple(reader.items("sentinels", _host_port)),
        service=reader.text("service", defaults.service),
        key_prefix=reader.text("key_prefix", defaults.key_prefix, allow_empty=True),
        timeout=reader.ranged("timeout", float, 0.01, 60.0, defaults.timeout),
        wait_replicas=reader.ranged("wait_replicas", int, 0, 100, defaults.wait_replicas),
    )
    reader.done()
    if not redis.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(reader.where("url"), "must be a redis://, rediss:// or unix:// URL")
    if redis.mode == "sentinel" and not redis.sentinels:
        raise ConfigError(reader.where("sentinels"), "sentinel mode needs at least one host:port")
    if redis.mode == "sentinel" and not redis.url.startswith("redis://"):
        # Only the database and credentials are taken from it; TLS to the servers is not wired.
        raise ConfigError(reader.where("url"), "in sentinel mode must be a redis:// URL")
    if redis.mode == "cluster" and redis.url.startswith("unix://"):
        raise ConfigError(reader.where("url"), "a cluster node is a redis:// or rediss:// URL")
    if redis.wait_replicas and redis.timeout < 0.25:  # WAIT itself is only as precise as 0.1 s
        raise ConfigError(reader.where("timeout"), "must be at least 0.25 with wait_replicas")
    return redis


def _host_port(data: Any, path: str) -> tuple[str, int]:
    host, _, port = data.rpartition(":") if isinstance(data, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, 'must be "host:port"')
    return host.strip("[]"), int(port)


def bucket(data: Any, path: str) -> BucketConfig:
    reader = Reader(data, path)
    config = BucketConfig(
        rate=reader.ranged("rate", float, 0.001, 1e6),
        burst=reader.ranged("burst", int, 1, 10**9),
    )
    reader.done()
    return config


def window(data: Any, path: str) -> WindowConfig:
    reader = Reader(data, path)
    window = WindowConfig(
        limit=reader.ranged("limit", int, 1, 10**6),
        seconds=reader.ranged("seconds", int, 1, 31 * 86400),
    )
    reader.done()
    return window


def ratelimit(reader: Reader) -> RateLimitConfig:
    defaults = RateLimitConfig()
    account = reader.data.get("account")
    config = RateLimitConfig(
        backend=reader.choice("backend", tuple(LIMITERS), defaults.backend),
        on_backend_error=reader.choice("on_backend_error", ("allow", "deny"), "allow"),
        account=bucket(account, reader.where("account")) if account is not None else defaults.account,
        # Omitted: the contract's anti-bombing windows. An empty list turns them off.
        phone=tuple(reader.items("phone", window)) if "phone" in reader.data else DEFAULT_WINDOWS,
    )
    reader.section("account")
    reader.done()
    return config


def providers(reader: Reader) -> ProvidersConfig:
    backends_reader = reader.section("backends")
    backends = {  # one that cannot be read still has its name, for the routes that name it
        str(name): checked(partial(read_backend, str(name), backends_reader.section(str(name))), None)
        for name in backends_reader.data
    }
    if not backends:
        raise ConfigError(backends_reader.path, "at least one backend is required")
    config = ProvidersConfig(
        default=reader.text("default", next(iter(backends))),
        failover=reader.strings("failover"),
        backends=backends,
        routes=read_routes(reader, backends),
    )
    reader.done()
    for index, name in enumerate((config.default, *config.failover)):
        if name not in backends:
            key = "default" if index == 0 else f"failover[{index - 1}]"
            note(ConfigError(reader.where(key), f"unknown backend {name!r}"))
    return config


def templates(reader: Reader) -> dict[str, TemplateConfig]:
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


def metrics(reader: Reader) -> MetricsConfig:
    config = MetricsConfig(
        enabled=reader.get("enabled", bool, True),
        path=reader.text("path", "/metrics"),
    )
    reader.done()
    if not config.path.startswith("/") or config.path.startswith("/api/"):
        raise ConfigError(reader.where("path"), "must start with / and lie outside /api/")
    return config


def logging_section(reader: Reader) -> LoggingConfig:
    config = LoggingConfig(
        level=reader.choice("level", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
        format=reader.choice("format", ("auto", "json", "text"), "auto"),
        access_sample=reader.ranged("access_sample", float, 0.0, 1.0, 1.0),
    )
    reader.done()
    return config


def _account_name(reader: Reader) -> str:
    """Trimmed, and held to the rules every account name keeps (``gateway.accounts.names``)."""
    try:
        return checked_name(reader.text("name"))
    except ValueError as exc:
        raise ConfigError(reader.where("name"), str(exc)) from None


def account(data: Any, path: str) -> AccountSeed:
    reader = Reader(data, path)
    limits = reader.data.get("ratelimit")
    seed = AccountSeed(
        name=_account_name(reader),
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


MIN_ADMIN_TOKEN = 16


def _admin_token(data: Any, path: str) -> tuple[str, str]:
    reader = Reader(data, path)
    name, token = reader.text("name"), reader.text("token")
    reader.done()
    if len(name) > 64:
        raise ConfigError(reader.where("name"), "must be at most 64 characters")
    if len(token) < MIN_ADMIN_TOKEN:
        raise ConfigError(reader.where("token"), f"must be at least {MIN_ADMIN_TOKEN} characters")
    return name, token


def admin(reader: Reader) -> AdminConfig:
    """``admin.tokens``: checked, then kept only as keyed hashes (the tokens are not kept)."""
    tokens = reader.items("tokens", _admin_token)
    reader.done()
    names = [name for name, _ in tokens]
    secrets = [token for _, token in tokens]
    for index, (name, token) in enumerate(tokens):
        if names.index(name) != index:
            raise ConfigError(f"{reader.where('tokens')}[{index}].name", "duplicate name")
        if secrets.index(token) != index:
            raise ConfigError(f"{reader.where('tokens')}[{index}].token", "duplicate token")
    return AdminConfig(tuple(AdminToken(name, hash_secret(token)) for name, token in tokens))
