"""Opt-in pytest plugin: run the HTTP-level suites on another store backend.

    .venv/bin/python -m pytest -p tests.store_backends --store-backend redis tests/test_account.py

Every test whose gateway is built from the ``config_document`` fixture then runs on a Redis store of
its own (a real ``redis-server``, see ``redis_server``) instead of its SQLite file. Tests that open
the SQLite file themselves are SQLite-specific and fail under ``redis`` by design; the API suites
(account, records, send, batch, rate limits) must pass unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SHARED_SECRET

__all__ = ["pytest_addoption", "store_backend"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-backend",
        choices=("sqlite", "redis"),
        default="sqlite",
        help="store backend the gateway-level tests run on (default: sqlite)",
    )


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest) -> None:
    """Point the test's config document at a fresh Redis before any gateway is built from it."""
    if request.config.getoption("--store-backend") != "redis":
        return
    if "config_document" not in request.fixturenames:
        return
    document: dict[str, Any] = request.getfixturevalue("config_document")
    server = request.getfixturevalue("redis_server")
    document["store"]["backend"] = "redis"
    document["redis"] = {**document.get("redis", {}), "url": server.url}
    document["server"]["secret_key"] = SHARED_SECRET
