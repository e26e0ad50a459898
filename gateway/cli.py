"""The command line: ``serve``, ``check-config`` and ``accounts`` (see shared/spec/config.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence

import orjson

from gateway.accounts import create_account, rotate_secret
from gateway.config import (
    VERIFICATION_STATUSES,
    BucketConfig,
    GatewayConfig,
    load_config,
    with_overrides,
)
from gateway.money import yuan_to_milli
from gateway.settings_reader import ConfigError
from gateway.store import Account, AccountExists, Store, StoreUnavailable
from gateway.store.factory import build_store

__all__ = ["main"]

log = logging.getLogger("smsedge")


def _milli(text: str) -> int:
    try:
        return yuan_to_milli(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def _name(text: str) -> str:
    if not text.strip() or len(text) > 64:
        raise argparse.ArgumentTypeError("a name of 1-64 characters")
    return text


def _flag(text: str) -> bool:
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError("true or false")
    return text == "true"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sms-edge", description="SMS Edge gateway")
    parser.add_argument("--config", help="config file (default: $SMS_EDGE_CONFIG or config/gateway.yaml)")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=argparse.SUPPRESS)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    check = commands.add_parser("check-config", help="validate the config and exit")
    check.add_argument("--config", default=argparse.SUPPRESS)

    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create")
    create.add_argument("--name", required=True, type=_name)
    create.add_argument("--balance", type=_milli, default=0)
    create.add_argument("--verification", choices=VERIFICATION_STATUSES, default="approved")
    create.add_argument("--rate", type=float)
    create.add_argument("--burst", type=int)
    accounts.add_parser("list")
    topup = accounts.add_parser("topup")
    topup.add_argument("--key", required=True)
    topup.add_argument("--amount", type=_milli, required=True)
    change = accounts.add_parser("set")
    change.add_argument("--key", required=True)
    change.add_argument("--verification", choices=VERIFICATION_STATUSES)
    change.add_argument("--rate", type=float)
    change.add_argument("--burst", type=int)
    change.add_argument("--disabled", type=_flag)
    rotate = accounts.add_parser("rotate-secret")
    rotate.add_argument("--key", required=True)
    for sub in accounts.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS)
    return parser


def _print(data: object) -> None:
    sys.stdout.write(orjson.dumps(data).decode() + "\n")


def _bucket(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BucketConfig | None:
    if (args.rate is None) != (args.burst is None):
        parser.error("--rate and --burst go together")
    if args.rate is None:
        return None
    if args.rate <= 0 or args.burst < 1:
        parser.error("--rate must be > 0 and --burst >= 1")
    return BucketConfig(rate=args.rate, burst=args.burst)


async def _accounts(args: argparse.Namespace, store: Store, parser: argparse.ArgumentParser) -> int:
    action = args.action
    if action == "create":
        account, secret = await create_account(
            store, args.name, balance_milli=args.balance,
            verification_status=args.verification, ratelimit=_bucket(args, parser),
        )
        _print({"name": account.name, "api_key": account.api_key, "api_secret": secret,
                "balance": account.balance_milli / 1000,
                "verification_status": account.verification_status})
        return 0
    if action == "list":
        for account in await store.list_accounts():
            _print(account.public())
        return 0
    found: Account | None
    if action == "topup":
        found = await store.top_up(args.key, args.amount)
    elif action == "rotate-secret":
        rotated = await rotate_secret(store, args.key)
        if rotated:
            _print({"api_key": args.key, "api_secret": rotated[1]})
            return 0
        found = None
    else:
        bucket = _bucket(args, parser)
        changes: dict[str, object] = {}
        if args.verification:
            changes["verification_status"] = args.verification
        if args.disabled is not None:
            changes["disabled"] = args.disabled
        if bucket:
            changes.update(rate=bucket.rate, burst=bucket.burst)
        if not changes:
            parser.error("nothing to set")
        found = await store.update_account(args.key, **changes)
    if found is None:
        print(f"no account with key {args.key[:6]}…", file=sys.stderr)
        return 1
    _print(found.public())
    return 0


async def _with_store(config: GatewayConfig, work: Callable[[Store], Awaitable[int]]) -> int:
    store = build_store(config)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def _serve(config: GatewayConfig, args: argparse.Namespace) -> int:
    from gateway.server import serve

    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k, None)) is not None}
    return serve(with_overrides(config, **overrides), args.config, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "check-config":
            print("ok")
            return 0
        if args.command == "accounts":
            return asyncio.run(_with_store(config, lambda store: _accounts(args, store, parser)))
        return _serve(config, args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except AccountExists as exc:
        print(f"account {exc} already exists", file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"store unavailable: {exc}", file=sys.stderr)
        return 1
