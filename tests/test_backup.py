"""The backup runbook (docs/runbook-backup.md), run as written on real parts.

SQLite: ``run.py backup --to FILE`` copies the store of a gateway process while it serves sends; the
gateway is then killed (a disaster that leaves its WAL behind), the copy restored the runbook's way,
and a new gateway on it must find every send acknowledged before the backup began, with the money
adding up. Redis: the same for the runbook's three ways with a real redis-server (``redis-cli
--rdb``, BGSAVE and a copy of dump.rdb, a copy of the AOF directory), each restored to a fresh server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, SHARED_SECRET, default_document, missing_from, without_limits
from tests.gateway_process import GatewayProcess, api_state
from tests.redis_server import RedisServer
from tests.redis_topologies import wait_for
from tests.test_crash_safety import assert_consistent, database_state
from tests.traffic import Traffic

RUNBOOK = ROOT / "docs" / "runbook-backup.md"
_TESTED = re.compile(r"<!-- tested: ([\w-]+) -->\n *```sh\n(.*?)\n *```", re.DOTALL)


def gateway_document(**overrides: Any) -> dict[str, Any]:
    document = without_limits(default_document())
    document["logging"]["level"] = "WARNING"
    for section, values in overrides.items():
        document[section] = {**document.get(section, {}), **values}
    return document


def run(*args: str | Path, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*map(str, args)], capture_output=True, text=True, timeout=60, check=False, **options
    )


def backup_command(config: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "run.py", "backup", "--config", config, "--to", target, cwd=ROOT)


def acknowledged_before(traffic: Traffic, moment: float) -> set[str]:
    return {
        json.loads(text)["data"]["message_id"]
        for at, status, text in traffic.answers
        if status == 200 and at < moment
    }


def during_backup(traffic: Traffic, take_backup) -> tuple[set[str], Any]:
    """Take the backup while ``traffic`` sends; the sends acknowledged before it began, and what
    ``take_backup`` returned. Sends must go on being answered 200 while it runs and after."""
    started = time.monotonic()
    result = take_backup()
    finished = time.monotonic()
    wait_for(
        lambda: any(at > finished and status == 200 for at, status, _ in traffic.answers),
        "a send acknowledged after the backup",
    )
    assert {status for _, status, _ in traffic.answers} == {200}
    return acknowledged_before(traffic, started), result


def kill_with_children(pid: int) -> None:
    # Children of any of its threads (the writer process is started from one of them).
    children = {
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    }
    for target in (pid, *children):
        os.kill(target, signal.SIGKILL)


# -- SQLite ------------------------------------------------------------------------------------------


def test_an_online_sqlite_backup_restored_after_a_crash_has_every_send_acknowledged_before_it(tmp_path):
    state = tmp_path / "var-lib-sms-edge"
    store = state / "sms-edge.db"
    document = gateway_document(store={"path": str(store)})
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    target = backups / "sms-edge-2024-05-01.db"

    gateway = GatewayProcess(document, tmp_path, name="live")
    try:
        with Traffic(gateway) as traffic:
            before, taken = during_backup(traffic, lambda: backup_command(gateway.config, target))
        assert taken.returncode == 0, taken.stderr
        report = json.loads(taken.stdout)
        # A disaster (power cut, the whole service killed): the gateway and its writer process die
        # with the newest commits still in the WAL beside the file.
        kill_with_children(gateway.process.pid)
        gateway.process.wait(timeout=10)
    finally:
        gateway.stop()
    assert Path(f"{store}-wal").exists()

    records, balance, total_sent = database_state(target)
    assert report == {
        "backup": str(target),
        "bytes": target.stat().st_size,
        "check": "ok",
        "accounts": 1,
        "records": len(records),
    }
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert before and before <= set(records)
    assert_consistent(records, balance, total_sent)  # one snapshot: no record without its charge

    # The runbook's restore: the old files (the WAL too) moved aside, the copy put in their place.
    aside = state / "before-restore"
    aside.mkdir()
    for old in state.glob("sms-edge.db*"):
        old.rename(aside / old.name)
    shutil.copyfile(target, store)
    store.chmod(0o600)

    restored = GatewayProcess(document, tmp_path, name="restored")
    try:
        statuses, info = api_state(restored)
    finally:
        restored.stop()
    assert statuses == {message_id: status for message_id, (status, _) in records.items()}
    assert info["balance"] == balance / 1000 and info["total_sent"] == total_sent


def test_backup_refuses_what_would_not_be_a_backup(tmp_path):
    """An existing file is never overwritten (the live store least of all), a missing store is not
    created, and a Redis store is pointed at Redis's own tools."""
    store = tmp_path / "sms-edge.db"
    config = tmp_path / "gateway.yaml"
    document = gateway_document(store={"path": str(store)})
    config.write_text(yaml.safe_dump(document), encoding="utf-8")

    missing = backup_command(config, tmp_path / "copy.db")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert f"no SQLite store at {store}" in missing.stderr
    assert not store.exists() and not (tmp_path / "copy.db").exists()

    gateway = GatewayProcess(document, tmp_path)
    gateway.stop()
    size = store.stat().st_size
    onto_itself = backup_command(config, store)
    assert onto_itself.returncode == 1 and "exists" in onto_itself.stderr
    assert store.stat().st_size == size
    # As another user than the gateway's, SQLite could leave files beside the store it cannot open.
    os.chown(store, 65534, 65534)
    as_other_user = backup_command(config, tmp_path / "copy.db")
    assert as_other_user.returncode == 1 and "uid 65534" in as_other_user.stderr
    os.chown(store, os.geteuid(), os.getegid())
    assert backup_command(config, tmp_path / "copy.db").returncode == 0  # a stopped gateway's store

    document["store"]["backend"] = "redis"
    document["server"]["secret_key"] = SHARED_SECRET
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    on_redis = backup_command(config, tmp_path / "other.db")
    assert on_redis.returncode == 1 and "docs/runbook-backup.md" in on_redis.stderr
    assert not (tmp_path / "other.db").exists()


def test_the_runbook_shows_the_commands_these_tests_run():
    commands = (
        "sms-edge backup --config /etc/sms-edge/gateway.yaml --to",
        "-name 'sms-edge.db*' -exec mv -t /var/lib/sms-edge/before-restore/",
        "run.py reconcile --dry-run",
    )
    assert missing_from(RUNBOOK, commands) == []
    text = RUNBOOK.read_text(encoding="utf-8")
    assert sorted(dict(_TESTED.findall(text))) == ["redis-aof", "redis-aof-on", "redis-bgsave", "redis-rdb"]


# -- Redis -------------------------------------------------------------------------------------------


def redis_cli(server: RedisServer, *args: str) -> str:
    result = run("redis-cli", "-u", server.url, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def runbook_block(name: str) -> str:
    return textwrap.dedent(dict(_TESTED.findall(RUNBOOK.read_text(encoding="utf-8")))[name])


def run_block(name: str, server: RedisServer, backups: Path) -> None:
    """A block of the runbook word for word, in bash stopping at the first failure, with
    ``redis-cli`` (and ``$REDIS_URL``) pointed at ``server`` and the backups in ``backups``."""
    script = runbook_block(name).replace("/var/backups/sms-edge", str(backups))
    shim = 'redis-cli() { command redis-cli -u "$REDIS_URL" "$@"; }\n'
    result = run(
        "bash", "-e", "-o", "pipefail", "-c", shim + script, env={**os.environ, "REDIS_URL": server.url}
    )
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


def the_new_file(backups: Path, name: str) -> Path:
    (made,) = backups.glob(name)
    return made


def rdb_over_the_network(server: RedisServer, backups: Path) -> Path:
    run_block("redis-rdb", server, backups)
    return the_new_file(backups, "redis-*.rdb")


def bgsave_and_copy(server: RedisServer, backups: Path) -> Path:
    run_block("redis-bgsave", server, backups)
    return the_new_file(backups, "redis-*.rdb")


def copy_the_aof(server: RedisServer, backups: Path) -> Path:
    run_block("redis-aof", server, backups)
    assert redis_cli(server, "CONFIG", "GET", "auto-aof-rewrite-percentage").split()[1] == "100"
    return the_new_file(backups, "appendonlydir-*")


def restore_rdb(copy: Path, directory: Path) -> RedisServer:
    """An RDB restored where AOF is wanted: started without AOF (Redis would load an AOF instead
    of the RDB), then AOF switched on live, which writes it from the loaded data."""
    shutil.copyfile(copy, directory / "dump.rdb")
    server = RedisServer(directory, "--dbfilename", "dump.rdb").start()  # appendonly no
    run_block("redis-aof-on", server, directory)
    # From now on it starts from its AOF, as configured: the restored data must be in it.
    server.stop()
    (directory / "dump.rdb").unlink()
    server.options = (*server.options, "--appendonly", "yes")
    return server.start()


def restore_aof(copy: Path, directory: Path) -> RedisServer:
    shutil.copytree(copy, directory / "appendonlydir")
    return RedisServer(directory, "--appendonly", "yes").start()


REDIS_WAYS = {
    "redis-cli --rdb": (rdb_over_the_network, restore_rdb),
    "BGSAVE": (bgsave_and_copy, restore_rdb),
    "AOF copy": (copy_the_aof, restore_aof),
}


@pytest.mark.parametrize("way", REDIS_WAYS)
def test_a_redis_backup_restored_to_a_new_server_has_every_send_acknowledged_before_it(tmp_path, way):
    take, restore = REDIS_WAYS[way]
    live_dir, backups, restored_dir = (tmp_path / name for name in ("live", "backups", "restored"))
    for directory in (live_dir, backups, restored_dir):
        directory.mkdir()
    live = RedisServer(live_dir, "--appendonly", "yes", "--appendfsync", "always").start()
    try:
        document = gateway_document(
            store={"backend": "redis"}, server={"secret_key": SHARED_SECRET}, redis={"url": live.url}
        )
        gateway = GatewayProcess(document, tmp_path, name="live")
        try:
            with Traffic(gateway) as traffic:
                before, copy = during_backup(traffic, lambda: take(live, backups))
        finally:
            gateway.stop()
    finally:
        live.stop()

    server = restore(copy, restored_dir)
    try:
        document["redis"]["url"] = server.url
        restored = GatewayProcess(document, tmp_path, name="restored")
        try:
            statuses, info = api_state(restored)
        finally:
            restored.stop()
    finally:
        server.stop()
    assert before and before <= set(statuses)
    # A send caught between its reserve and its settle is pending (reconcile's work), never lost.
    assert set(statuses.values()) <= {"success", "pending"}
    assert info["total_sent"] == list(statuses.values()).count("success")
    assert round(100 - info["balance"], 2) == round(0.05 * len(statuses), 2)  # each send charged once
