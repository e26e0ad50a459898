"""``python run.py accounts ...``: the operator's commands, run as processes on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.accounts.credentials import verify_secret
from gateway.store.cache import ACCOUNT_CACHE_TTL
from tests.conftest import REDIS_MODES, SEND_BODY, SHARED_SECRET, default_document, redis_section
from tests.gateway_process import run_py

CREATED_FIELDS = {"name", "api_key", "api_secret", "balance", "verification_status"}


class Cli:
    """``run.py accounts`` on a copy of the shipped config whose store lives under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "cli.db"
        document = default_document()
        document["store"]["path"] = str(self.db)
        self.config = tmp_path / "cli.yaml"
        self.config.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if k != "SMS_EDGE_CONFIG"}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_py("accounts", *args, "--config", self.config, env=self.env)

    def json(self, *args: str) -> dict[str, Any]:
        """Run a command that must succeed and print exactly one JSON object."""
        result = self(*args)
        assert result.returncode == 0, result.stderr
        [line] = result.stdout.splitlines()
        return json.loads(line)

    def listing(self) -> list[dict[str, Any]]:
        result = self("list")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def stored_bytes(self) -> bytes:
        """The database and its journal/WAL side files, byte for byte."""
        return b"".join(path.read_bytes() for path in self.db.parent.glob(self.db.name + "*"))


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)


def auth(account: dict[str, Any], secret: str | None = None) -> dict[str, str]:
    return {"X-API-Key": account["api_key"], "X-API-Secret": secret or account["api_secret"]}


async def within_cache_bound(client, headers: dict[str, str], done: Callable[[int, dict], bool]):
    """Poll account info until ``done(status, body)``: a change made by another process (the CLI)
    reaches a running gateway within the account cache's bound (``ACCOUNT_CACHE_TTL``), not at once.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + ACCOUNT_CACHE_TTL + 0.5  # slack for a loaded machine
    while True:
        response = await client.get("/api/account/info", headers=headers)
        body = await response.json()
        if done(response.status, body):
            return response.status, body, loop.time() - start
        assert loop.time() < deadline, f"still {response.status} {body} past the cache bound"
        await asyncio.sleep(0.05)


def test_create_prints_one_object_with_the_secret_shown_once(cli):
    created = cli.json("create", "--name", "shop", "--balance", "12.5")
    assert set(created) == CREATED_FIELDS
    assert created["name"] == "shop"
    assert created["balance"] == 12.5
    assert created["verification_status"] == "approved"
    assert created["api_key"].startswith("sk_")
    assert len(created["api_secret"]) >= 16
    pending = cli.json("create", "--name", "new", "--verification", "pending")
    assert (pending["balance"], pending["verification_status"]) == (0, "pending")
    assert pending["api_key"] != created["api_key"]
    assert pending["api_secret"] != created["api_secret"]


def test_the_secret_is_stored_only_as_a_hash(cli):
    created = cli.json("create", "--name", "shop", "--balance", "1")
    assert created["api_secret"].encode() not in cli.stored_bytes()
    with sqlite3.connect(cli.db) as db:
        [(stored,)] = db.execute(
            "SELECT secret_hash FROM accounts WHERE api_key = ?", (created["api_key"],)
        ).fetchall()
    assert stored.startswith("hmac-sha256$")
    assert verify_secret(created["api_secret"], stored)
    assert not verify_secret(created["api_secret"] + "x", stored)


def test_list_prints_json_lines_without_secrets_or_hashes(cli):
    first = cli.json("create", "--name", "one", "--balance", "1")
    second = cli.json("create", "--name", "two", "--rate", "5", "--burst", "10")
    result = cli("list")
    assert result.returncode == 0
    listed = {row["name"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(listed) == {"one", "two"}
    assert listed["one"]["api_key"] == first["api_key"]
    assert listed["one"]["balance"] == 1.0
    assert listed["two"]["ratelimit"] == {"rate": 5.0, "burst": 10}
    for secret in (first["api_secret"], second["api_secret"]):
        assert secret not in result.stdout
    assert "hmac-sha256" not in result.stdout
    for row in listed.values():
        assert not [key for key in row if "secret" in key or "hash" in key]


@pytest.mark.parametrize("mode", REDIS_MODES)
def test_account_commands_work_on_a_redis_store_in_every_mode(cli, request, mode):
    """The CLI opens one Redis client for the run (the store's), and closes it: the process ends.
    On a cluster the account, its name and its key land in different slots."""
    document = yaml.safe_load(cli.config.read_text(encoding="utf-8"))
    document["store"]["backend"] = "redis"
    document["redis"] = {**document.get("redis", {}), **redis_section(request, mode)}
    document["server"]["secret_key"] = SHARED_SECRET
    cli.config.write_text(yaml.safe_dump(document), encoding="utf-8")
    created = cli.json("create", "--name", "on-redis", "--balance", "2")
    topped = cli.json("topup", "--key", created["api_key"], "--amount", "3")
    assert topped["balance"] == 5.0
    changed = cli.json("set", "--key", created["api_key"], "--rate", "2", "--burst", "4")
    assert changed["ratelimit"] == {"rate": 2.0, "burst": 4}
    assert cli("create", "--name", "on-redis").returncode != 0  # the name is taken
    assert [row["name"] for row in cli.listing()] == ["on-redis"]
    assert not cli.db.exists()  # nothing went to the SQLite file


def test_topup_adds_to_the_balance(cli):
    created = cli.json("create", "--name", "shop", "--balance", "1.5")
    topped = cli.json("topup", "--key", created["api_key"], "--amount", "7.25")
    assert topped["balance"] == 8.75
    again = cli.json("topup", "--key", created["api_key"], "--amount", "0.001")
    assert again["balance"] == 8.751
    assert "api_secret" not in again
    [listed] = cli.listing()
    assert listed["balance"] == 8.751


@pytest.mark.parametrize(
    "args",
    [
        ("--amount", "0"),
        ("--amount", "-0"),
        ("--amount", "0.000"),
        ("--amount", "-0.0"),
        ("--amount", "1.00000000000000001"),
        ("--amount", "0.0001"),
        ("--amount", "1e-4"),
        ("--amount", "1", "--reason", "   "),
        ("--amount", "1", "--reason", "x" * 201),
    ],
)
def test_a_top_up_the_admin_api_refuses_is_refused_here_too_and_audits_nothing(cli, args):
    """One rule for both, in the account service: more than 0 yuan, exactly (no rounding), in at
    most 3 decimals; a reason, when given, of 1-200 characters."""
    created = cli.json("create", "--name", "shop", "--balance", "1")
    result = cli("topup", "--key", created["api_key"], *args)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.strip() and "Traceback" not in result.stderr
    with sqlite3.connect(cli.db) as db:
        assert db.execute("SELECT actor, action FROM audit_log").fetchall() == [("cli", "create")]
    assert [row["balance"] for row in cli.listing()] == [1.0]


@pytest.mark.parametrize("name", ["a\nb", "rtl\u202eevil", "zero\u200bwidth", "audit-1280-1796628604", "   "])
def test_a_name_the_admin_api_refuses_is_refused_here_too(cli, name):
    result = cli("create", "--name", name)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert "Traceback" not in result.stderr and cli.listing() == []


def test_names_are_trimmed_and_a_lookalike_of_a_taken_one_is_refused(cli):
    assert cli.json("create", "--name", " shop ")["name"] == "shop"
    twin = cli("create", "--name", "ＳＨＯＰ")
    assert (twin.returncode, twin.stdout) == (1, "") and "already exists" in twin.stderr
    assert [row["name"] for row in cli.listing()] == ["shop"]


def test_set_changes_verification_disabled_and_limits(cli):
    key = cli.json("create", "--name", "shop")["api_key"]
    assert cli.json("set", "--key", key, "--verification", "rejected")["verification_status"] == ("rejected")
    assert cli.json("set", "--key", key, "--disabled", "true")["disabled"] is True
    limited = cli.json("set", "--key", key, "--rate", "2.5", "--burst", "7")
    assert limited["ratelimit"] == {"rate": 2.5, "burst": 7}
    assert limited["disabled"] is True  # earlier changes stay
    assert cli.json("set", "--key", key, "--disabled", "false")["disabled"] is False
    [listed] = cli.listing()
    assert (listed["verification_status"], listed["disabled"]) == ("rejected", False)
    assert listed["ratelimit"] == {"rate": 2.5, "burst": 7}


def test_set_callback_settings_checked_by_the_admin_apis_rule_and_audited(cli):
    key = cli.json("create", "--name", "hooks")["api_key"]
    hooks = "https://hooks.example.com/sms/"
    changed = cli.json("set", "--key", key, "--callback-prefixes", f"{hooks},http://10.0.0.5/cb")
    assert changed["callback_prefixes"] == [hooks, "http://10.0.0.5/cb"]
    changed = cli.json("set", "--key", key, "--callback-url", hooks + "in")
    assert changed["callback_url"] == hooks + "in"
    for refused in (
        ("--callback-url", "https://intranet.local/x"),
        ("--callback-prefixes", "https://other.example.com/"),  # would leave the URL outside
        ("--callback-prefixes", "hooks.example.com"),
    ):
        result = cli("set", "--key", key, *refused)
        assert result.returncode == 2 and result.stdout == "", refused
        assert "callback_" in result.stderr and "Traceback" not in result.stderr
    assert cli.json("set", "--key", key, "--callback-url", "none")["callback_url"] is None
    assert cli.json("set", "--key", key, "--callback-prefixes", "")["callback_prefixes"] == []
    with sqlite3.connect(cli.db) as db:
        actions = [row[0] for row in db.execute("SELECT action FROM audit_log WHERE actor = 'cli'")]
    assert actions == ["create", "update", "update", "update", "update"]


def test_callback_secret_is_printed_once_and_kept_to_sign(cli):
    key = cli.json("create", "--name", "signer")["api_key"]
    shown = cli.json("callback-secret", "--key", key)
    assert shown["api_key"] == key and len(shown["callback_secret"]) >= 32
    [listed] = cli.listing()
    assert listed["callback_signed"] is True and shown["callback_secret"] not in json.dumps(listed)
    with sqlite3.connect(cli.db) as db:
        assert db.execute("SELECT callback_secret FROM accounts").fetchone()[0] == shown["callback_secret"]
        [audit] = db.execute("SELECT before || after FROM audit_log WHERE action = 'callback-secret'")
    assert shown["callback_secret"] not in audit[0]
    assert cli("callback-secret", "--key", "sk_nobody").returncode == 1


async def test_rotate_secret_takes_effect_in_a_running_gateway(cli, make_client):
    created = cli.json("create", "--name", "shop", "--balance", "3")
    client = await make_client(store={"path": str(cli.db)})
    before = await client.get("/api/account/info", headers=auth(created))
    assert before.status == 200
    rotated = await asyncio.to_thread(cli.json, "rotate-secret", "--key", created["api_key"])
    assert rotated["api_key"] == created["api_key"]
    new_secret = rotated["api_secret"]
    assert new_secret != created["api_secret"] and len(new_secret) >= 16
    assert new_secret.encode() not in cli.stored_bytes()
    await within_cache_bound(client, auth(created), lambda status, _: status == 401)
    new = await client.get("/api/account/info", headers=auth(created, new_secret))
    assert new.status == 200
    assert (await new.json())["data"]["balance"] == 3.0
    assert "api_secret" not in json.dumps(cli.listing())


async def test_account_commands_work_while_the_gateway_runs(cli, make_client):
    created = cli.json("create", "--name", "shop")
    headers = auth(created)
    client = await make_client(store={"path": str(cli.db)}, ratelimit={"phone": []})
    broke = await client.post("/api/sms/send", json=SEND_BODY, headers=headers)
    assert (await broke.json())["code"] == "INSUFFICIENT_BALANCE"
    await asyncio.to_thread(cli.json, "topup", "--key", created["api_key"], "--amount", "1")
    assert (await client.post("/api/sms/send", json=SEND_BODY, headers=headers)).status == 200
    await asyncio.to_thread(cli.json, "set", "--key", created["api_key"], "--verification", "pending")
    await within_cache_bound(
        client, headers, lambda _, body: body["data"]["verification_status"] == "pending"
    )
    unverified = await client.post("/api/sms/send", json=SEND_BODY, headers=headers)
    assert (await unverified.json())["code"] == "UNVERIFIED"
    await asyncio.to_thread(cli.json, "set", "--key", created["api_key"], "--disabled", "true")
    _, disabled, _ = await within_cache_bound(client, headers, lambda status, _: status == 403)
    assert disabled["code"] == "ACCOUNT_DISABLED"
    [listed] = [row for row in cli.listing() if row["name"] == "shop"]
    assert (listed["balance"], listed["total_sent"]) == (0.95, 1)


@pytest.mark.parametrize(
    "args",
    [
        ("topup", "--key", "sk_nobody", "--amount", "1"),
        ("set", "--key", "sk_nobody", "--verification", "approved"),
        ("rotate-secret", "--key", "sk_nobody"),
    ],
)
def test_an_unknown_key_fails_without_output(cli, args):
    result = cli(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip() and "Traceback" not in result.stderr


def test_a_duplicate_name_fails_and_keeps_the_first_account(cli):
    first = cli.json("create", "--name", "shop", "--balance", "2")
    result = cli("create", "--name", "shop", "--balance", "9")
    assert result.returncode != 0 and result.stdout == ""
    assert "already exists" in result.stderr
    [listed] = cli.listing()
    assert (listed["api_key"], listed["balance"]) == (first["api_key"], 2.0)


@pytest.mark.parametrize(
    "args",
    [
        ("create",),
        ("create", "--name", "x", "--balance", "abc"),
        ("create", "--name", "x", "--balance", "0.0001"),
        ("create", "--name", "x", "--balance", "-1"),
        ("create", "--name", "x", "--balance", "Infinity"),
        ("create", "--name", "x", "--verification", "maybe"),
        ("create", "--name", "x", "--rate", "5"),
        ("create", "--name", "x", "--rate", "0", "--burst", "1"),
        ("create", "--name", "x", "--rate", "nan", "--burst", "1"),
        ("create", "--name", "x", "--rate", "inf", "--burst", "1"),
        ("create", "--name", "x", "--rate", "-inf", "--burst", "1"),
        ("create", "--name", "x", "--rate", "1", "--burst", "0"),
        ("set", "--key", "KEY", "--rate", "nan", "--burst", "3"),
        ("set", "--key", "KEY", "--rate", "Infinity", "--burst", "3"),
        ("frobnicate",),
        ("topup", "--key", "KEY"),
        ("topup", "--key", "KEY", "--amount", "ten"),
        ("topup", "--key", "KEY", "--amount", "-5"),
        ("set", "--key", "KEY"),
        ("set", "--key", "KEY", "--disabled", "maybe"),
        ("set", "--key", "KEY", "--burst", "3"),
        ("rotate-secret",),
    ],
)
def test_bad_arguments_exit_2_and_change_nothing(cli, args):
    created = cli.json("create", "--name", "shop", "--balance", "1")
    args = tuple(created["api_key"] if arg == "KEY" else arg for arg in args)
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [listed] = cli.listing()
    assert (listed["name"], listed["balance"], listed["disabled"]) == ("shop", 1.0, False)


async def test_a_cli_change_reaches_a_running_gateway_within_the_cache_bound(cli, make_client):
    """Disabled by another process: refused within ``ACCOUNT_CACHE_TTL`` of the command's end."""
    created = cli.json("create", "--name", "shop", "--balance", "3")
    client = await make_client(store={"path": str(cli.db)})
    assert (await client.get("/api/account/info", headers=auth(created))).status == 200  # cached
    await asyncio.to_thread(cli.json, "set", "--key", created["api_key"], "--disabled", "true")
    _, body, waited = await within_cache_bound(client, auth(created), lambda status, _: status == 403)
    assert body["code"] == "ACCOUNT_DISABLED"
    assert waited <= ACCOUNT_CACHE_TTL + 0.5
    await asyncio.to_thread(cli.json, "topup", "--key", created["api_key"], "--amount", "2")
    await asyncio.to_thread(cli.json, "set", "--key", created["api_key"], "--disabled", "false")
    _, body, _ = await within_cache_bound(client, auth(created), lambda status, _: status == 200)
    assert body["data"]["balance"] == 5.0
