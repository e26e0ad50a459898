"""The rules between config values, all in one place: what no single field's declaration can say.

Each rule belongs to one Struct of ``gateway.config.model`` and runs on it once every one of its
fields has been read (``gateway.config.reader``), yielding a ConfigError per broken rule with its key
path; the rules of the whole file (``GatewayConfig``) run once every section has been read.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.accounts.names import name_key
from gateway.billing.wording import placeholder_names
from gateway.callbacks.urls import CallbackUrlRefused, check_callback_url, check_prefixes
from gateway.config.model import (
    AccountSeed,
    GatewayConfig,
    ProvidersConfig,
    RateLimitConfig,
    RedisConfig,
    RoutingRule,
    ServerConfig,
    StoreConfig,
    TemplateConfig,
    TlsConfig,
)
from gateway.config.reader import ConfigError, Rule
from gateway.process.tls import server_context
from gateway.ratelimit.backends import LIMITERS
from gateway.store.backends import STORES

__all__ = ["RULES"]


def _server(server: ServerConfig, path: str) -> Iterator[ConfigError]:
    if server.tls.enabled and server.public_url.startswith("http://"):
        # The docs page would show readers examples that send their credentials in the clear.
        yield ConfigError(f"{path}.public_url", "must be an https:// URL when server.tls is on")


def _tls(tls: TlsConfig, _path: str) -> Iterator[ConfigError]:
    try:
        server_context(tls)  # the files are checked by building what the server will serve with
    except ConfigError as problem:
        yield problem


def _store(store: StoreConfig, path: str) -> Iterator[ConfigError]:
    if store.backend not in STORES:
        yield ConfigError(f"{path}.backend", f"must be one of {', '.join(STORES)}")


def _redis(redis: RedisConfig, path: str) -> Iterator[ConfigError]:
    if redis.mode == "sentinel" and not redis.sentinels:
        yield ConfigError(f"{path}.sentinels", "sentinel mode needs at least one host:port")
    if redis.mode == "sentinel" and not redis.url.startswith("redis://"):
        # Only the database and credentials are taken from it; TLS to the servers is not wired.
        yield ConfigError(f"{path}.url", "in sentinel mode must be a redis:// URL")
    if redis.mode == "cluster" and redis.url.startswith("unix://"):
        yield ConfigError(f"{path}.url", "a cluster node is a redis:// or rediss:// URL")
    if redis.wait_replicas and redis.timeout < 0.25:  # WAIT itself is only as precise as 0.1 s
        yield ConfigError(f"{path}.timeout", "must be at least 0.25 with wait_replicas")


def _ratelimit(ratelimit: RateLimitConfig, path: str) -> Iterator[ConfigError]:
    if ratelimit.backend not in LIMITERS:
        yield ConfigError(f"{path}.backend", f"must be one of {', '.join(LIMITERS)}")


def _route(route: RoutingRule, path: str) -> Iterator[ConfigError]:
    if [route.to is not None, bool(route.split), route.strategy is not None].count(True) != 1:
        yield ConfigError(path, "needs exactly one of to, split, strategy")
    elif route.split and sum(weight for _, weight in route.split) != 100:
        yield ConfigError(f"{path}.split", "weights must sum to 100")


def _providers(providers: ProvidersConfig, path: str) -> Iterator[ConfigError]:
    """Every backend a name stands for is configured."""
    if not providers.backends:
        yield ConfigError(f"{path}.backends", "at least one backend is required")
        return
    named = [("default", providers.default)]
    named += [(f"failover[{index}]", name) for index, name in enumerate(providers.failover)]
    for index, route in enumerate(providers.routes):
        named += [(f"routes[{index}].to", route.to)] if route.to else []
        named += [(f"routes[{index}].split.{name}", name) for name, _ in route.split]
    for key, name in named:
        if name not in providers.backends:
            yield ConfigError(f"{path}.{key}", f"unknown backend {name!r}")


def _gateway(config: GatewayConfig, _path: str) -> Iterator[ConfigError]:
    """The rules that span sections."""
    for index, seed in enumerate(config.accounts):
        for position, name in enumerate(seed.providers):
            if name not in config.providers.backends:
                yield ConfigError(f"accounts[{index}].providers[{position}]", f"unknown backend {name!r}")
        yield from _callbacks(seed, f"accounts[{index}]")
    for template_id, template in config.templates.items():
        for backend in template.carriers:
            if backend not in config.providers.backends:
                yield ConfigError(
                    f"templates.{template_id}.carriers.{backend}", f"unknown backend {backend!r}"
                )
    names = [name_key(seed.name) for seed in config.accounts]  # Shop, SHOP and ＳＨＯＰ are one name
    for index, name in enumerate(names):
        if (first := names.index(name)) != index:
            yield ConfigError(f"accounts[{index}].name", f"the same name as accounts[{first}]")
    yield from _shared_state(config)


def _template(template: TemplateConfig, path: str) -> Iterator[ConfigError]:
    """A text must name exactly the template's params: it is what the send is counted (and billed) by."""
    texts = [(path, template.text), *((f"{path}.carriers.{b}", w.text) for b, w in template.carriers.items())]
    for where, text in texts:
        if text is None:
            continue
        named = placeholder_names(text, template.params)
        if named != set(template.params):
            yield ConfigError(
                f"{where}.text",
                f"its placeholders ({', '.join(sorted(named)) or 'none'}) differ from params"
                f" ({', '.join(template.params) or 'none'})",
            )


def _callbacks(seed: AccountSeed, path: str) -> Iterator[ConfigError]:
    """A listed account's callback settings keep the rule the admin API and the CLI apply."""
    try:
        prefixes = check_prefixes(seed.callback_prefixes)
        if seed.callback_url is not None:
            check_callback_url(seed.callback_url, prefixes)
    except CallbackUrlRefused as refused:
        yield ConfigError(path, str(refused))


def _shared_state(config: GatewayConfig) -> Iterator[ConfigError]:
    server = config.server
    if server.workers > 1 and config.ratelimit.backend == "memory":
        yield ConfigError("server.workers", "more than 1 worker needs ratelimit.backend: redis")
    shared = config.store.backend == "redis" or config.ratelimit.backend == "redis" or server.workers > 1
    if shared and not server.secret_key:
        # Numbers are found again (windows, receipts) by a keyed hash: every process must agree.
        yield ConfigError("server.secret_key", "required when state is shared (redis or workers > 1)")
    taking = [backend.name for backend in config.providers.backends.values() if backend.receipts]
    if taking and not server.secret_key:
        # A receipt finds its record by the number's keyed hash: a key made per process would
        # lose every send made before a restart (it would wait for a receipt that never matches).
        yield ConfigError(
            "server.secret_key", f"required when a backend takes delivery receipts ({', '.join(taking)})"
        )


#: The rules of each Struct, run by the reader on every one it reads.
RULES: dict[type, Rule] = {
    ServerConfig: _server,
    TlsConfig: _tls,
    StoreConfig: _store,
    RedisConfig: _redis,
    RateLimitConfig: _ratelimit,
    RoutingRule: _route,
    ProvidersConfig: _providers,
    GatewayConfig: _gateway,
    TemplateConfig: _template,
}
