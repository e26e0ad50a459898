"""``run.py usage --from D --to D [--account K] [--format csv|json]``: the usage report (config.md).

Apart from ``gateway.process.cli`` so the command line's dispatch stays short; the report itself is
``gateway.billing.usage``, which the admin API serves too."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

import msgspec

from gateway.billing.usage import UnknownAccount, parse_day, usage_csv, usage_report
from gateway.config.model import GatewayConfig
from gateway.store.base import Store

__all__ = ["add_usage_command", "run_usage_command"]


def _day(text: str) -> date:
    try:
        return parse_day(text, "day")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_usage_command(commands: argparse._SubParsersAction[Any]) -> None:
    usage = commands.add_parser(
        "usage", help="per account, carrier and day: messages, segments, charged, refunded"
    )
    usage.add_argument("--config", default=argparse.SUPPRESS)
    usage.add_argument("--from", dest="first", type=_day, required=True, metavar="YYYY-MM-DD")
    usage.add_argument("--to", dest="last", type=_day, required=True, metavar="YYYY-MM-DD")
    usage.add_argument("--account", metavar="API_KEY", help="one account's (default: every account's)")
    usage.add_argument("--format", choices=("json", "csv"), default="json")


async def run_usage_command(args: argparse.Namespace, config: GatewayConfig, store: Store) -> int:
    """JSON: one object a row, a line each; CSV: a header, then a row a line. 2 for a bad range
    or an unknown account."""
    try:
        rows = await usage_report(store, config.server.zone, args.first, args.last, args.account)
    except UnknownAccount:
        print("no account has that api key", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.format == "csv":
        sys.stdout.write(usage_csv(rows))
    else:
        for row in rows:
            sys.stdout.write(msgspec.json.encode(row).decode() + "\n")
    return 0
