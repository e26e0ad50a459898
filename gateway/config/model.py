"""The gateway's settings as frozen dataclasses: what the rest of the code sees of its config.

Built only by ``gateway.config.loader`` (parsing and validation live there and in
``gateway.config.sections``), so nothing else ever handles raw YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_WINDOWS",
    "REDIS_MODES",
    "VERIFICATION_STATUSES",
    "AccountSeed",
    "AdminConfig",
    "AdminToken",
    "BackendConfig",
    "BucketConfig",
    "GatewayConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ProvidersConfig",
    "RateLimitConfig",
    "RedisConfig",
    "RouteConfig",
    "RouteMatch",
    "ServerConfig",
    "StoreConfig",
    "TemplateConfig",
    "TlsConfig",
    "WindowConfig",
]

DEFAULT_CONFIG_PATH = "config/gateway.yaml"
VERIFICATION_STATUSES = ("approved", "pending", "rejected")


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
class TlsConfig:
    """PEM paths: cert and key serve HTTPS; client_ca also requires client certificates."""

    cert: str = ""
    key: str = ""
    client_ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert)

    @property
    def scheme(self) -> str:
        """What the gateway's own URLs start with."""
        return "https" if self.enabled else "http"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 65536
    timezone: str = "Asia/Shanghai"
    workers: int = 1
    header_timeout: float = 10.0  # a connection without a complete request header this long is closed
    body_timeout: float = 10.0  # a request body not received within this is answered 408
    public_url: str = ""  # where readers of the docs page reach the gateway; empty: the local address
    secret_key: str = ""  # keys the hash of phone numbers; empty: random per process
    tls: TlsConfig = TlsConfig()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: str = "sqlite"
    path: str = "data/sms-edge.db"
    timeout: float = 5.0  # seconds to wait on the store (locked, writer stalled) before answering 503


#: How the one Redis client finds its servers.
REDIS_MODES = ("standalone", "cluster", "sentinel")


@dataclass(frozen=True, slots=True)
class RedisConfig:
    mode: str = "standalone"  # standalone | cluster | sentinel
    url: str = "redis://127.0.0.1:6379/0"  # standalone: the server; cluster: any node
    sentinels: tuple[tuple[str, int], ...] = ()  # sentinel: the sentinels' (host, port)
    service: str = "mymaster"  # sentinel: the monitored primary's name
    key_prefix: str = "smsedge:"
    timeout: float = 1.0  # seconds a request may wait on Redis in all: an outage is an error, never a hang
    wait_replicas: int = 0  # replicas that must confirm a store write before it is answered (WAIT); 0: off


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
    countries: frozenset[str] = frozenset()  # ISO regions it serves (``cheapest`` asks); empty: all
    options: Any = None


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What a number must be for a route to take it: every key given must match; none given: all."""

    countries: frozenset[str] = frozenset()  # ISO regions of the number
    prefixes: tuple[str, ...] = ()  # E.164 prefixes
    templates: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()  # account names


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One entry of ``providers.routes``: a match, and exactly one of ``to``, ``split``, ``strategy``."""

    name: str  # its label in metrics and on /status: the configured name, else "#<position>"
    match: RouteMatch
    to: str | None = None
    split: tuple[tuple[str, int], ...] = ()  # (backend, weight), weights summing to 100
    strategy: str | None = None  # "cheapest"


@dataclass(frozen=True, slots=True)
class ProvidersConfig:
    default: str
    failover: tuple[str, ...]
    backends: dict[str, BackendConfig]
    routes: tuple[RouteConfig, ...] = ()


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
    format: str = "auto"  # json | text; auto (not set): text on a terminal, JSON otherwise
    access_sample: float = 1.0  # the share of 2xx/3xx access lines written; 4xx and 5xx always are


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
class AdminToken:
    """One admin API bearer token: its name (the audit log's actor) and only a keyed hash of it."""

    name: str
    token_hash: str  # gateway.accounts.credentials.hash_secret; the token itself is not kept


@dataclass(frozen=True, slots=True)
class AdminConfig:
    tokens: tuple[AdminToken, ...] = ()  # none: /admin is off (404)


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
    admin: AdminConfig = AdminConfig()

    def template(self, template_id: str) -> TemplateConfig:
        return self.templates.get(template_id) or TemplateConfig()
