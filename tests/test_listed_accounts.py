"""The accounts the config lists, on both stores: the config applies an ``api_secret`` only when
its own value changed since it last applied it, so a secret rotated by an operator (admin API,
CLI) survives every start and reload until someone changes the config's; each change the config
makes is an audit entry with the actor ``config``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from gateway.accounts.credentials import verify_secret
from gateway.accounts.listed import CONFIG_ACTOR, bootstrap_accounts
from gateway.accounts.service import AccountService
from gateway.config.loader import parse_config
from gateway.config.model import AccountSeed
from gateway.keys import STORE
from gateway.process.reload import reload_config
from gateway.redis.client import RedisSource
from gateway.store.backends import build_store
from gateway.store.base import Store
from gateway.store.cache import CachedStore
from tests.conftest import DEMO_HEADERS, DEMO_KEY, DEMO_SECRET, merge
from tests.test_hardening import legacy_scrypt_hash

CHANGED = "changed-in-the-config-0123"
ALICE_TOKEN = "alice-admin-token-0123456789abcdef"
ADMIN = {"tokens": [{"name": "ops-alice", "token": ALICE_TOKEN}]}


@pytest.fixture
def document(config_document: dict[str, Any], store_backend: dict[str, Any]) -> dict[str, Any]:
    return merge(config_document, {**store_backend, "admin": ADMIN})


def seeds(document: dict[str, Any], secret: str = DEMO_SECRET) -> tuple[AccountSeed, ...]:
    changed = merge(document, {})
    changed["accounts"][0]["api_secret"] = secret
    return parse_config(changed).accounts


@pytest.fixture
async def store(document: dict[str, Any]) -> AsyncIterator[Store]:
    config = parse_config(document)
    async with RedisSource(config.redis) as redis:
        opened = build_store(config, redis)
        assert isinstance(opened, CachedStore)
        await opened.open()
        yield opened
        await opened.close()


async def secret_is(store: Store, secret: str) -> bool:
    account = await AccountService(store).account(DEMO_KEY)
    return account is not None and verify_secret(secret, account.secret_hash)


async def trail(store: Store) -> list[tuple[str, str]]:
    return [(entry.actor, entry.action) for entry in (await store.audit_page(1, 100)).entries]


async def test_a_rotation_survives_starts_until_the_configs_secret_changes(document, store, caplog):
    caplog.set_level(logging.INFO, "smsedge")
    await bootstrap_accounts(store, seeds(document))
    assert await trail(store) == [(CONFIG_ACTOR, "create")]
    _, rotated = await AccountService(store).rotate_secret("ops-alice", DEMO_KEY)
    caplog.clear()
    for _ in range(3):  # starts and reloads with the same file
        await bootstrap_accounts(store, seeds(document))
    assert await secret_is(store, rotated) and not await secret_is(store, DEMO_SECRET)
    assert await trail(store) == [("ops-alice", "rotate-secret"), (CONFIG_ACTOR, "create")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("rotated since" in r.getMessage() for r in caplog.records)

    await bootstrap_accounts(store, seeds(document, CHANGED))  # the config's own value changed
    assert await secret_is(store, CHANGED) and not await secret_is(store, rotated)
    assert await trail(store) == [
        (CONFIG_ACTOR, "rotate-secret"),
        ("ops-alice", "rotate-secret"),
        (CONFIG_ACTOR, "create"),
    ]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'demo'" in warning.getMessage() and "config" in warning.getMessage()
    await bootstrap_accounts(store, seeds(document, CHANGED))
    assert len(await trail(store)) == 3  # applied once


async def test_concurrent_starters_apply_each_change_once(document, store):
    """Workers and a fleet's gateways run the same bootstrap at once: one create, one rotation."""
    await asyncio.gather(*(bootstrap_accounts(store, seeds(document)) for _ in range(4)))
    await asyncio.gather(*(bootstrap_accounts(store, seeds(document, CHANGED)) for _ in range(4)))
    assert await trail(store) == [(CONFIG_ACTOR, "rotate-secret"), (CONFIG_ACTOR, "create")]
    assert await secret_is(store, CHANGED)
    assert [account.name for account in await store.list_accounts()] == ["demo"]


async def test_a_listed_account_is_created_with_the_configs_callback_settings(document):
    hooks = "https://hooks.example.com/sms/"
    document["accounts"][0].update(callback_url=hooks + "in", callback_prefixes=[hooks])
    config = parse_config(document)
    async with RedisSource(config.redis) as redis:
        store = build_store(config, redis)
        await store.open()
        try:
            await bootstrap_accounts(store, config.accounts)
            account = await AccountService(store).account(DEMO_KEY)
        finally:
            await store.close()
    assert account is not None
    assert (account.callback_url, account.callback_prefixes) == (hooks + "in", (hooks,))


async def test_an_account_the_config_never_applied_a_secret_to_takes_its_secret_once(store):
    """Made before the config listed it (an operator, or a gateway older than the record): the
    config's secret is applied once, audited; one that is the config's already is only recorded
    (and an old scrypt hash of it renewed)."""
    service = AccountService(store)
    shop, _ = await service.create("cli", "shop")
    kept, kept_secret = await service.create("cli", "kept")
    await store.update_account(kept.api_key, secret_hash=legacy_scrypt_hash(kept_secret))
    listed = (
        AccountSeed("shop", shop.api_key, CHANGED, 0, "approved", (), None),
        AccountSeed("kept", kept.api_key, kept_secret, 0, "approved", (), None),
    )
    for _ in range(2):
        await bootstrap_accounts(store, listed)
    assert verify_secret(CHANGED, (await service.account(shop.api_key)).secret_hash)
    renewed = (await service.account(kept.api_key)).secret_hash  # the same secret, the fast hash
    assert renewed.startswith("hmac-sha256$") and verify_secret(kept_secret, renewed)
    assert await store.config_secret_hash(kept.api_key) is not None
    assert await trail(store) == [(CONFIG_ACTOR, "rotate-secret"), ("cli", "create"), ("cli", "create")]


async def test_a_listed_name_that_reads_as_a_taken_one_is_skipped(store, caplog):
    await AccountService(store).create("cli", "shop")
    twin = AccountSeed("ＳＨＯＰ", "sk_listed_0000000000", CHANGED, 0, "approved", (), None)
    await bootstrap_accounts(store, (twin,))
    assert [account.name for account in await store.list_accounts()] == ["shop"]
    assert "'ＳＨＯＰ': the name (or one that reads the same) is taken" in caplog.text
    assert await trail(store) == [("cli", "create")]


async def test_a_reload_keeps_a_secret_the_admin_api_rotated(document, make_client, tmp_path):
    path = tmp_path / "reload.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    client = await make_client(config=parse_config(document))
    rotated = await client.post(
        f"/admin/api/accounts/{DEMO_KEY}/rotate-secret", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}
    )
    new_secret = (await rotated.json())["data"]["api_secret"]
    assert await reload_config(client.app, str(path), {})
    await asyncio.sleep(0.2)  # SQLite's followers poll every 0.1 s; Redis's are told at once
    old = await client.get("/api/account/info", headers=DEMO_HEADERS)
    new = await client.get("/api/account/info", headers={**DEMO_HEADERS, "X-API-Secret": new_secret})
    assert (old.status, new.status) == (401, 200)
    assert await trail(client.app[STORE]) == [("ops-alice", "rotate-secret"), (CONFIG_ACTOR, "create")]
