"""Shared fixtures: a config built from the shipped default, and clients on real HTTP over loopback.

Every test app uses its own SQLite file under ``tmp_path``; carriers are the mock (or fakes at the
network edge), never a stand-in for the gateway's own parts.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.accounts.creation import create_account
from gateway.app import create_app
from gateway.config.loader import parse_config
from gateway.config.model import GatewayConfig
from gateway.keys import STORE
from gateway.store.base import Account

ROOT = Path(__file__).resolve().parent.parent
DEMO_KEY = "sk_demo_0000000000000000"
DEMO_SECRET = "demo-secret-change-me"
DEMO_HEADERS = {"X-API-Key": DEMO_KEY, "X-API-Secret": DEMO_SECRET}
SHARED_SECRET = "test-shared-secret-key-00000000"  # server.secret_key, where state is shared

#: Fixtures that start something real, and the marker (setup.cfg) each gives its tests, so that
#: ``make test-fast`` can leave them out.
FIXTURE_MARKERS = {
    "redis_server": "redis",
    "redis_cluster": "redis",
    "redis_sentinel": "redis",
    "browser": "browser",
    "chrome": "browser",
    "live": "subprocess",
}
#: Names in a test module's source that start something without a fixture: the whole module is marked.
SOURCE_MARKERS = {
    "RedisServer": "redis",
    "ClusterServers": "redis",
    "SentinelGroup": "redis",
    "tests.browser": "browser",
    "webdriver": "browser",
    "GatewayProcess": "subprocess",
    "LiveServer": "subprocess",
    '"run.py"': "subprocess",
    "run_py": "subprocess",
    "sys.executable": "subprocess",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it uses, the helpers its module names, and the parameters that
    select Redis. Marking only narrows ``make test-fast``: ``make test`` runs every test."""
    module_markers: dict[Path, set[str]] = {}
    for item in items:
        path = item.path
        if path not in module_markers:
            source = path.read_text(encoding="utf-8")
            module_markers[path] = {marker for name, marker in SOURCE_MARKERS.items() if name in source}
        names = set(getattr(item, "fixturenames", ()))
        markers = module_markers[path] | {FIXTURE_MARKERS[name] for name in names & FIXTURE_MARKERS.keys()}
        params = getattr(getattr(item, "callspec", None), "params", {})
        if any(isinstance(value, str) and value.startswith("redis") for value in params.values()):
            markers.add("redis")
        for marker in sorted(markers):
            item.add_marker(marker)


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def default_document() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))


def missing_from(document: Path, phrases: Iterable[str]) -> list[str]:
    """The ``phrases`` that ``document`` (a runbook, say) does not contain: what it fails to say."""
    text = document.read_text(encoding="utf-8")
    return [phrase for phrase in phrases if phrase not in text]


class FakeClock:
    """A settable wall clock (epoch seconds) for day boundaries and time filters."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def config_document(tmp_path: Path) -> dict[str, Any]:
    """The shipped default config, pointed at a fresh SQLite file."""
    document = default_document()
    document["store"]["path"] = str(tmp_path / "gateway.db")
    document["accounts"][0]["api_key"] = DEMO_KEY
    document["accounts"][0]["api_secret"] = DEMO_SECRET
    return without_limits(document)


def without_limits(document: dict[str, Any]) -> dict[str, Any]:
    """Limits out of the way of tests about something else (rate-limit tests set their own)."""
    document["ratelimit"]["account"] = {"rate": 1000, "burst": 100_000}
    document["ratelimit"]["phone"] = []
    document["accounts"][0]["ratelimit"] = {"rate": 1000, "burst": 100_000}
    return document


@pytest.fixture
def make_config(config_document: dict[str, Any]) -> Callable[..., GatewayConfig]:
    def build(**overrides: Any) -> GatewayConfig:
        return parse_config(merge(config_document, overrides))

    return build


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def make_client(aiohttp_client, make_config) -> MakeClient:
    """``await make_client(config=..., clock=..., **overrides)`` → a client of a running gateway."""

    async def build(
        config: GatewayConfig | None = None,
        clock: Callable[[], float] | None = None,
        setup: Callable[[web.Application], None] | None = None,
        **overrides: Any,
    ) -> TestClient:
        app = create_app(config or make_config(**overrides), **({"clock": clock} if clock else {}))
        if setup:
            setup(app)
        return await aiohttp_client(app)

    return build


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()


async def add_account(client: TestClient, name: str, **kwargs: Any) -> tuple[Account, dict[str, str]]:
    """Create an account in the running gateway's store; return it with its auth headers."""
    account, secret = await create_account(client.app[STORE], name, **kwargs)
    return account, {"X-API-Key": account.api_key, "X-API-Secret": secret}


SEND_BODY = {"phone": "13800138000", "template_id": "123456", "params": {"code": "1234"}}


@pytest.fixture(params=["sqlite", "redis"])
def store_backend(request) -> dict[str, Any]:
    """Config overrides selecting the store backend (a real Redis for ``redis``)."""
    if request.param == "sqlite":
        return {}
    server = request.getfixturevalue("redis_server")
    return {
        "store": {"backend": "redis"},
        "redis": {"url": server.url},
        "server": {"secret_key": SHARED_SECRET},
    }


@pytest.fixture
def redis_server(tmp_path: Path):
    """A real, empty Redis server of this test's own; stopped afterwards."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real 3-master Redis Cluster, shared by the session (tests keep apart by key prefix)."""
    from tests.redis_topologies import ClusterServers

    cluster = ClusterServers(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory):
    """A real primary + replica + Sentinel, shared by the session; failover tests start their own."""
    from tests.redis_topologies import SentinelGroup

    group = SentinelGroup(tmp_path_factory.mktemp("redis-sentinel")).start()
    yield group
    group.stop()


#: Each Redis set-up the Redis backends are tested on: the value of ``redis.mode``.
REDIS_MODES = ("standalone", "cluster", "sentinel")


def redis_section(request: pytest.FixtureRequest, mode: str) -> dict[str, Any]:
    """The ``redis`` config section for a fresh, empty store on a real set-up of ``mode``."""
    if mode == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        # Each test's client connects to every node afresh; on a loaded 2-core CI machine one
        # such connect has taken over the default 1 s budget (twice in ~1,500 tests). These tests
        # are about what the store does on a cluster; the budget itself is tested on standalone.
        return {"mode": mode, "url": cluster.url, "key_prefix": f"{uuid.uuid4().hex[:12]}:", "timeout": 5}
    if mode == "sentinel":
        group = request.getfixturevalue("redis_sentinel")
        return {
            "mode": mode,
            "sentinels": group.sentinels,
            "service": group.service,
            "key_prefix": f"{uuid.uuid4().hex[:12]}:",
        }
    return {"mode": mode, "url": request.getfixturevalue("redis_server").url}


@pytest.fixture
async def session():
    """A real aiohttp client session, like the one the gateway lends its carriers."""
    async with aiohttp.ClientSession() as opened:
        yield opened
