"""The ``accounts`` subcommands (create, list, topup, set, rotate-secret, callback-secret; config.md):
their arguments, checked by the same rules the admin API uses, and their run through the account
service, audited as ``cli``. Apart from ``gateway.process.cli`` so the command line's dispatch stays short;
``print_json`` is here as these commands print most, and the other reports print the same way."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from gateway.accounts.rules import (
    Invalid,
    check_amount,
    check_bucket,
    check_limit,
    check_rate,
    check_reason,
    yuan_text,
)
from gateway.accounts.service import CLI_ACTOR, AccountService
from gateway.config.model import VERIFICATION_STATUSES, BucketConfig
from gateway.phones import scrub
from gateway.store.base import Account, Store

__all__ = ["add_account_commands", "print_json", "run_account_command"]

T = TypeVar("T")


def _argument(check: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from one of the account checks the admin API uses too."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except Invalid as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


_milli = _argument(lambda text: check_amount(yuan_text(text)))
_rate, _reason, _limit = _argument(check_rate), _argument(check_reason), _argument(check_limit)


def _flag(text: str) -> bool:
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError("true or false")
    return text == "true"


def add_account_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """``accounts`` and its actions, on the command line's subcommands."""
    accounts = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create")
    create.add_argument("--name", required=True)  # checked by the account service
    create.add_argument("--balance", type=_milli, default=0)
    create.add_argument("--verification", choices=VERIFICATION_STATUSES, default="approved")
    create.add_argument("--rate", type=_rate)
    create.add_argument("--burst", type=int)
    accounts.add_parser("list")
    topup = accounts.add_parser("topup")
    topup.add_argument("--key", required=True)
    topup.add_argument("--amount", type=_milli, required=True)
    topup.add_argument("--reason", type=_reason, help="why, for the audit log")
    change = accounts.add_parser("set")
    change.add_argument("--key", required=True)
    change.add_argument("--verification", choices=VERIFICATION_STATUSES)
    change.add_argument("--rate", type=_rate)
    change.add_argument("--burst", type=int)
    change.add_argument("--disabled", type=_flag)
    change.add_argument("--callback-url", help="where delivery callbacks go; none: nowhere")
    change.add_argument("--callback-prefixes", help="comma-separated URL prefixes; empty: none")
    for period in ("daily", "monthly"):  # absent: unchanged (not in the namespace)
        change.add_argument(
            f"--{period}-limit", type=_limit, default=argparse.SUPPRESS, help="messages; none: no cap"
        )
    rotate = accounts.add_parser("rotate-secret")
    rotate.add_argument("--key", required=True)
    accounts.add_parser("callback-secret").add_argument("--key", required=True)
    for sub in accounts.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS)


def print_json(data: object) -> None:
    """A command's report: one JSON document a line on stdout."""
    sys.stdout.write(orjson.dumps(data).decode() + "\n")


def _bucket(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BucketConfig | None:
    if (args.rate is None) != (args.burst is None):
        parser.error("--rate and --burst go together")
    if args.rate is None:
        return None
    try:
        return check_bucket(args.rate, args.burst)
    except Invalid as exc:
        parser.error(f"--burst: {exc}")


def _changes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, object]:
    """What ``accounts set`` asks to change, as store fields."""
    bucket = _bucket(args, parser)
    changes: dict[str, object] = {}
    if args.verification:
        changes["verification_status"] = args.verification
    if args.disabled is not None:
        changes["disabled"] = args.disabled
    if bucket:
        changes.update(rate=bucket.rate, burst=bucket.burst)
    if args.callback_url is not None:  # checked by the account service, with the account's prefixes
        changes["callback_url"] = None if args.callback_url == "none" else args.callback_url
    if args.callback_prefixes is not None:
        changes["callback_prefixes"] = [p.strip() for p in args.callback_prefixes.split(",") if p.strip()]
    changes.update({name: getattr(args, name) for name in ("daily_limit", "monthly_limit") if name in args})
    if not changes:
        parser.error("nothing to set")
    return changes


async def run_account_command(args: argparse.Namespace, store: Store, parser: argparse.ArgumentParser) -> int:
    """One ``accounts`` command, through the account service (audited as ``cli``)."""
    action, service = args.action, AccountService(store)
    if action == "create":
        account, secret = await service.create(
            CLI_ACTOR,
            args.name,
            balance_milli=args.balance,
            verification_status=args.verification,
            ratelimit=_bucket(args, parser),
        )
        print_json(
            {
                "name": scrub(account.name),
                "api_key": account.api_key,
                "api_secret": secret,
                "balance": account.balance_milli / 1000,
                "verification_status": account.verification_status,
            }
        )
        return 0
    if action == "list":
        for account in await store.list_accounts():
            print_json(account.public())
        return 0
    found: Account | None = None
    if action == "topup":
        found = await service.top_up(CLI_ACTOR, args.key, args.amount, args.reason)
    elif action == "rotate-secret":
        rotated = await service.rotate_secret(CLI_ACTOR, args.key)
        if rotated:
            print_json({"api_key": args.key, "api_secret": rotated[1]})
            return 0
    elif action == "callback-secret":
        signing = await service.set_callback_secret(CLI_ACTOR, args.key)
        if signing:
            print_json({"api_key": args.key, "callback_secret": signing[1]})
            return 0
    else:
        found = await service.update(CLI_ACTOR, args.key, _changes(args, parser))
    if found is None:
        print(f"no account with key {args.key[:6]}…", file=sys.stderr)
        return 1
    print_json(found.public())
    return 0
