"""The gateway's settings, each section declared once: its keys, types, defaults and bounds.

Frozen msgspec Structs, the contract of ``docs/configuration.md`` and all the rest of the code sees of
its config. ``gateway.config.reader`` reads a YAML document into them by what they declare (``Meta``
bounds; ``gateway.config.fields`` for a value the YAML spells otherwise); rules between several
values are ``gateway.config.rules``. A carrier declares its own options the same way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

from msgspec import Meta, Struct, field
from msgspec.structs import force_setattr, replace

from gateway.accounts.credentials import hash_secret
from gateway.accounts.names import checked_name
from gateway.config import values
from gateway.config.fields import From, Pairs, SecretText, Text, Then, Unique
from gateway.money import yuan_to_milli

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_WINDOWS",
    "VERIFICATION_STATUSES",
    "AccountSeed",
    "AdminConfig",
    "AdminToken",
    "BackendConfig",
    "BucketConfig",
    "CircuitConfig",
    "GatewayConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ProvidersConfig",
    "RateLimitConfig",
    "ReceiptsConfig",
    "RedisConfig",
    "RoutingMatch",
    "RoutingRule",
    "ServerConfig",
    "Settings",
    "StoreConfig",
    "TemplateConfig",
    "TemplateText",
    "TlsConfig",
    "WindowConfig",
]

DEFAULT_CONFIG_PATH = "config/gateway.yaml"
VerificationStatus = Literal["approved", "pending", "rejected"]
VERIFICATION_STATUSES: tuple[str, ...] = get_args(VerificationStatus)

Region = Annotated[Text, Then(values.region)]  # ISO 3166, as the numbering plan knows it
Yuan = Annotated[int, From(yuan_to_milli)]  # written in yuan (0.045), kept in milli-yuan (45)


class Settings(Struct, frozen=True, forbid_unknown_fields=True):
    """What every section and every carrier's ``Options`` is: immutable once read, and refusing a key
    it does not declare."""


class BucketConfig(Settings, frozen=True):
    """A token bucket: tokens a second, and how many it holds."""

    rate: Annotated[float, Meta(ge=0.001, le=1e6)]
    burst: Annotated[int, Meta(ge=1, le=10**9)]


class WindowConfig(Settings, frozen=True):
    """A sliding window of one number's sends (anti SMS-bombing)."""

    limit: Annotated[int, Meta(ge=1, le=10**6)]
    seconds: Annotated[int, Meta(ge=1, le=31 * 86400)]


DEFAULT_WINDOWS = (WindowConfig(1, 60), WindowConfig(5, 3600), WindowConfig(10, 86400))


class TlsConfig(Settings, frozen=True, kw_only=True):
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


class ServerConfig(Settings, frozen=True, kw_only=True):
    host: Text = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080
    max_body_bytes: Annotated[int, Meta(ge=1024, le=64 << 20)] = 65536
    timezone: Annotated[Text, Then(values.time_zone)] = "Asia/Shanghai"
    workers: Annotated[int, Meta(ge=1, le=256)] = 1
    # A connection without a complete request header this long is closed; a body not received
    # within body_timeout is answered 408.
    header_timeout: Annotated[float, Meta(ge=0.1, le=3600.0)] = 10.0
    body_timeout: Annotated[float, Meta(ge=0.1, le=3600.0)] = 10.0
    public_url: Annotated[str, Then(values.public_url)] = ""  # for the docs page; empty: the local address
    # Keys the hash of phone numbers; empty: random per process.
    secret_key: Annotated[str, Meta(min_length=16), Then(SecretText)] = ""
    tls: TlsConfig = TlsConfig()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class StoreConfig(Settings, frozen=True, kw_only=True):
    backend: Text = "sqlite"  # a name in gateway.store.backends.STORES
    path: Text = "data/sms-edge.db"
    timeout: Annotated[float, Meta(ge=0.01, le=300.0)] = 5.0  # seconds on a locked store before 503


class RedisConfig(Settings, frozen=True, kw_only=True):
    mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    url: Annotated[Text, Then(values.redis_url)] = "redis://127.0.0.1:6379/0"  # cluster: any node
    sentinels: tuple[Annotated[tuple[str, int], From(values.host_port)], ...] = ()  # sentinel mode
    service: Text = "mymaster"  # sentinel: the monitored primary's name
    key_prefix: str = "smsedge:"
    # Seconds a request may wait on Redis in all: an outage is an error, never a hang.
    timeout: Annotated[float, Meta(ge=0.01, le=60.0)] = 1.0
    # Replicas that must confirm a store write before it is answered (WAIT); 0: off.
    wait_replicas: Annotated[int, Meta(ge=0, le=100)] = 0


class RateLimitConfig(Settings, frozen=True, kw_only=True):
    backend: Text = "memory"  # a name in gateway.ratelimit.backends.LIMITERS
    on_backend_error: Literal["allow", "deny"] = "allow"
    account: BucketConfig = BucketConfig(rate=20.0, burst=40)
    phone: tuple[WindowConfig, ...] = DEFAULT_WINDOWS  # [] turns them off


class CircuitConfig(Settings, frozen=True, kw_only=True):
    failures: Annotated[int, Meta(ge=1, le=1000)] = 5  # consecutive failed calls that open it
    cooldown: Annotated[float, Meta(ge=0.01, le=3600.0)] = 30.0  # seconds open before one trial call


class BackendConfig(Settings, frozen=True, kw_only=True):
    """One carrier backend: the keys every plugin shares, and the plugin's own ``options``."""

    name: str  # not a key: its name under providers.backends
    plugin: Text = ""  # empty: the backend's own name
    price_milli: Yuan = field(name="price")
    timeout: Annotated[float, Meta(ge=0.01, le=120.0)] = 5.0
    retries: Annotated[int, Meta(ge=0, le=10)] = 1
    receipts: bool = False
    callback_token: Annotated[str, Then(SecretText)] = ""
    failover_on_timeout: bool = False  # a timed-out send may have gone out: retrying risks a duplicate
    circuit: CircuitConfig = CircuitConfig()
    countries: frozenset[Region] = frozenset()  # ISO regions it serves (``cheapest`` asks); empty: all
    options: Any = None  # not a key: its plugin's Options, read from the section's other keys

    @property
    def circuit_failures(self) -> int:
        return self.circuit.failures

    @property
    def circuit_cooldown(self) -> float:
        return self.circuit.cooldown


class RoutingMatch(Settings, frozen=True, kw_only=True):
    """What a number must be for a route to take it: every key given must match; none given: all."""

    countries: frozenset[Region] = field(default=frozenset(), name="country")
    prefixes: tuple[Annotated[Text, Then(values.e164_prefix)], ...] = field(default=(), name="prefix")
    templates: frozenset[Text] = field(default=frozenset(), name="template")
    accounts: frozenset[Text] = field(default=frozenset(), name="account")  # account names


class RoutingRule(Settings, frozen=True, kw_only=True):
    """One entry of ``providers.routes``: a match, and exactly one of ``to``, ``split``, ``strategy``."""

    name: str = ""  # its label in metrics and on /status; unnamed: "#<position>"
    match: RoutingMatch = RoutingMatch()
    to: Text | None = None
    # (backend, weight), weights summing to 100; written as a mapping {backend: weight}
    split: Annotated[tuple[tuple[str, Annotated[int, Meta(ge=1, le=100)]], ...], Pairs()] = ()
    strategy: Literal["cheapest"] | None = None


class ProvidersConfig(Settings, frozen=True, kw_only=True):
    backends: dict[str, BackendConfig] = {}
    default: Text = ""  # empty: the first backend
    failover: tuple[Text, ...] = ()
    routes: tuple[RoutingRule, ...] = ()

    def __post_init__(self) -> None:
        """The defaults that depend on the rest: the first backend, a route's place."""
        if not self.default and self.backends:
            force_setattr(self, "default", next(iter(self.backends)))
        if not all(route.name for route in self.routes):
            force_setattr(
                self,
                "routes",
                tuple(
                    route if route.name else replace(route, name=f"#{position}")
                    for position, route in enumerate(self.routes, start=1)
                ),
            )


class TemplateText(Settings, frozen=True, kw_only=True):
    """A template's words as a carrier shows them: what its segments are counted from."""

    text: str | None = None  # with the params' placeholders ({code}, ${code} or {1}); None: unknown
    sign: str = ""  # the signature as the carrier adds it ("【SMS Edge】"), counted with the text


class TemplateConfig(Settings, frozen=True, kw_only=True):
    text: str | None = None  # as ``TemplateText``: what every backend shows, unless it has its own
    sign: str = ""
    params: tuple[Text, ...] = ()  # order of the values for carriers that take a list
    ids: dict[str, Text] = {}  # this template's id at a backend, where it differs
    carriers: dict[str, TemplateText] = {}  # its text or signature at a backend, where they differ

    def words(self, backend: str) -> TemplateText:
        """Its text and signature at ``backend``: the backend's own where given, else the template's."""
        own = self.carriers.get(backend)
        if own is None:
            return TemplateText(text=self.text, sign=self.sign)
        return TemplateText(text=self.text if own.text is None else own.text, sign=own.sign or self.sign)


class ReceiptsConfig(Settings, frozen=True, kw_only=True):
    """Records that wait for a delivery receipt: when to ask the carrier, and when to stop."""

    pull_after: Annotated[int, Meta(ge=1, le=30 * 86400)] = 600  # seconds without a receipt
    give_up_after: Annotated[int, Meta(ge=60, le=90 * 86400)] = 259_200  # then marked "no receipt"
    refund_unknown: bool = False  # true: refund what never got a receipt (the carrier may have billed it)


class MetricsConfig(Settings, frozen=True, kw_only=True):
    enabled: bool = True
    path: Annotated[Text, Then(values.metrics_path)] = "/metrics"


class LoggingConfig(Settings, frozen=True, kw_only=True):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, JSON otherwise
    access_sample: Annotated[float, Meta(ge=0.0, le=1.0)] = 1.0  # share of 2xx/3xx access lines written


class AccountSeed(Settings, frozen=True):
    """An account the config lists: created on start if missing (``gateway.accounts.listed``)."""

    name: Annotated[Text, Then(checked_name)]  # trimmed, held to gateway.accounts.names
    api_key: Text
    api_secret: Annotated[str, Meta(min_length=12), Then(SecretText)]
    balance_milli: Yuan = field(default=0, name="balance")
    verification_status: VerificationStatus = "approved"
    providers: tuple[Text, ...] = ()
    ratelimit: BucketConfig | None = None
    # Delivery callbacks, applied when the account is created (``gateway.callbacks.urls``' rule).
    callback_url: Text | None = None
    callback_prefixes: tuple[Text, ...] = ()
    # Messages a day / month in server.timezone, as created (``gateway.store.quotas``); None: no cap.
    daily_limit: Annotated[int, Meta(ge=1, le=10**9)] | None = None
    monthly_limit: Annotated[int, Meta(ge=1, le=10**9)] | None = None


class AdminToken(Settings, frozen=True, kw_only=True):
    """One admin API bearer token: its name (the audit log's actor) and only a keyed hash of it."""

    name: Annotated[Text, Meta(max_length=64)]
    token_hash: Annotated[str, Meta(min_length=16), Then(hash_secret)] = field(name="token")


class AdminConfig(Settings, frozen=True, kw_only=True):
    tokens: Annotated[tuple[AdminToken, ...], Unique("name", "token")] = ()  # none: /admin is off (404)


class GatewayConfig(Settings, frozen=True, kw_only=True):
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    redis: RedisConfig = RedisConfig()
    ratelimit: RateLimitConfig = RateLimitConfig()
    providers: ProvidersConfig  # left out: read as empty, so it says what it needs
    templates: dict[str, TemplateConfig] = {}
    receipts: ReceiptsConfig = ReceiptsConfig()
    metrics: MetricsConfig = MetricsConfig()
    logging: LoggingConfig = LoggingConfig()
    accounts: Annotated[tuple[AccountSeed, ...], Unique("api_key")] = ()
    admin: AdminConfig = AdminConfig()
