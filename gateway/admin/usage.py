"""GET /admin/api/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&account=API_KEY: the usage report.

What ``run.py usage`` prints (``gateway.billing.usage``), as ``{"rows": [...]}`` (the CLI's
``--format csv`` is for spreadsheets)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from gateway.admin.routes import account_unknown
from gateway.billing.usage import UnknownAccount, parse_day, usage_report
from gateway.errors import invalid
from gateway.keys import CONFIG, STORE
from gateway.responses import json_response

__all__ = ["usage"]


async def usage(request: web.Request) -> web.Response:
    query = request.query
    try:
        first = parse_day(query.get("from", ""), "from")
        last = parse_day(query.get("to", ""), "to")
        rows = await usage_report(
            request.app[STORE], request.app[CONFIG].server.zone, first, last, query.get("account")
        )
    except UnknownAccount:
        raise account_unknown() from None
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return json_response({"success": True, "data": {"rows": msgspec.to_builtins(rows)}})
