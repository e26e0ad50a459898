"""The command line: ``serve``, ``reload``, ``check-config``, ``accounts``, ``reconcile``, ``backup``
(config.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence

from gateway.accounts.creation import accounts_with_shipped_secret, is_loopback
from gateway.accounts.listed import bootstrap_accounts
from gateway.accounts.rules import Invalid
from gateway.callbacks.urls import CallbackUrlRefused
from gateway.clock import local_day
from gateway.config.loader import load_config, with_overrides
from gateway.config.model import GatewayConfig
from gateway.config.reader import ConfigError
from gateway.logs import setup_logging
from gateway.process.account_commands import add_account_commands, print_json, run_account_command
from gateway.process.greeting import DemoSecret, demo_secret, greeting, shipped_secret_refusal
from gateway.process.pidfile import signal_reload
from gateway.process.server import serve
from gateway.process.usage_command import add_usage_command, run_usage_command
from gateway.reconcile import money_moved, reconcile_account
from gateway.store.backends import with_store
from gateway.store.base import Account, AccountExists, Store, StoreUnavailable
from gateway.store.sqlite.backup import BackupRefused, backup

__all__ = ["main"]

log = logging.getLogger("smsedge")


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: whole seconds, 0 or more")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms-edge", description="SMS Edge gateway")
    parser.add_argument("--config", help="config file (default: $SMS_EDGE_CONFIG or config/gateway.yaml)")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=argparse.SUPPRESS)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    reload = commands.add_parser(
        "reload",
        help="validate the config, then make the running gateway"
        " re-read it (SIGHUP to the PID in its PID file, or to --pid)",
    )
    reload.add_argument("--config", default=argparse.SUPPRESS)
    reload.add_argument("--pid", type=int, help="the gateway's PID (default: from its PID file)")
    check = commands.add_parser("check-config", help="validate the config and exit")
    check.add_argument("--config", default=argparse.SUPPRESS)

    add_account_commands(commands)
    add_usage_command(commands)
    reconcile = commands.add_parser(
        "reconcile", help="settle records left pending by a crash: refund them, or charge as sent"
    )
    reconcile.add_argument("--config", default=argparse.SUPPRESS)
    reconcile.add_argument(
        "--older-than",
        type=_seconds,
        default=300,
        metavar="SECONDS",
        help="only records pending at least this long (default 300)",
    )
    reconcile.add_argument("--as", dest="settle_as", choices=("refund", "sent"), default="refund")
    reconcile.add_argument("--dry-run", action="store_true", help="report, change nothing")
    copy = commands.add_parser("backup", help="copy the SQLite store, consistent, while gateways serve")
    copy.add_argument("--config", default=argparse.SUPPRESS)
    copy.add_argument("--to", required=True, metavar="FILE", help="the new file to write")
    return parser


async def _reconcile(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    """Every account's stale pending records settled; one JSON document of what was done."""
    now = time.time()
    now_ms = int(now * 1000)
    as_sent = args.settle_as == "sent"
    reports = [
        await reconcile_account(
            store,
            account,
            now_ms - args.older_than * 1000,
            now_ms,
            local_day(now, config.server.zone),
            as_sent=as_sent,
            dry_run=args.dry_run,
        )
        for account in await store.list_accounts()
    ]
    shown = [report for report in reports if report.reconciled or report.awaiting_receipt]
    milli = sum(report.milli for report in shown)  # summed exactly, in milli-yuan
    print_json(
        {
            "as": args.settle_as,
            "dry_run": args.dry_run,
            "older_than": args.older_than,
            "accounts": [report.public(as_sent) for report in shown],
            "total": {
                "reconciled": sum(report.reconciled for report in shown),
                **money_moved(milli, as_sent),
                "awaiting_receipt": sum(report.awaiting_receipt for report in shown),
            },
        }
    )
    return 0


async def _start_accounts(config: GatewayConfig) -> tuple[list[Account], DemoSecret | None]:
    """The config's accounts applied to the store; then the enabled accounts that still have the
    public demo secret, and which secret the demo account has (for the greeting)."""

    async def check(store: Store) -> tuple[list[Account], DemoSecret | None]:
        await bootstrap_accounts(store, config.accounts)
        return await accounts_with_shipped_secret(store), await demo_secret(store, config)

    return await with_store(config, check)


def _serve(config: GatewayConfig, args: argparse.Namespace) -> int:
    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k, None)) is not None}
    config = with_overrides(config, **overrides)
    # Before the accounts are applied: what the config does to them is logged, and a refusal
    # too, in the configured form like every later line.
    setup_logging(config.logging)
    host = config.server.host
    shipped, secret = asyncio.run(_start_accounts(config))
    if shipped and not is_loopback(host):
        log.error("%s", shipped_secret_refusal(host, shipped, args.config))
        return 2
    return serve(config, args.config, overrides, greeting(config, secret))


def _reload(config: GatewayConfig, pid: int | None) -> int:
    try:
        signalled = signal_reload(config.server.port, pid)
    except LookupError as exc:
        print(f"reload not sent: {exc}", file=sys.stderr)
        return 1
    print(f"sent SIGHUP to the gateway (pid {signalled}); its log says whether the reload was applied")
    return 0


def _backup(config: GatewayConfig, target: str) -> int:
    if config.store.backend != "sqlite":
        print(
            f"backup not written: store.backend is {config.store.backend}; back it up with its own"
            " tools (docs/runbook-backup.md)",
            file=sys.stderr,
        )
        return 1
    try:
        print_json(backup(config.store.path, target, config.store.timeout))
    except BackupRefused as exc:
        print(f"backup not written: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "check-config":
            print("ok")
            return 0
        if args.command == "reload":
            return _reload(config, args.pid)
        if args.command == "accounts":
            return asyncio.run(with_store(config, lambda store: run_account_command(args, store, parser)))
        if args.command == "usage":
            return asyncio.run(with_store(config, lambda store: run_usage_command(args, config, store)))
        if args.command == "reconcile":
            return asyncio.run(with_store(config, lambda store: _reconcile(args, config, store)))
        if args.command == "backup":
            return _backup(config, args.to)
        return _serve(config, args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (Invalid, CallbackUrlRefused) as exc:  # the account service's refusals (argparse: the rest)
        print(exc, file=sys.stderr)
        return 2
    except AccountExists as exc:
        print(f"account {exc} already exists", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"store unavailable: {exc}", file=sys.stderr)
        return 1
