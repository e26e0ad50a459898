"""GET /admin: the operators' console, a static shell that talks to the admin API from the browser.

Like ``/console`` the server renders only what is configured and public (provider names, the
verification statuses, the limits of a name and a reason); accounts, messages and the audit log
come from ``/admin/api`` with the admin token the person types in, which the page keeps in memory
and ``sessionStorage`` only. With no ``admin.tokens`` configured the page is not there (404), as
the API is not.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from gateway.accounts.rules import MAX_NAME_LENGTH, MAX_REASON_LENGTH
from gateway.config.model import VERIFICATION_STATUSES
from gateway.keys import CONFIG, RUNTIME

__all__ = ["VERIFICATION_LABELS", "admin_enabled", "admin_page"]

VERIFICATION_LABELS = {"approved": "已认证", "pending": "审核中", "rejected": "未通过"}


def admin_enabled(app: web.Application) -> bool:
    """Whether an admin token is configured now (a reload may add or retire them)."""
    return bool(app[RUNTIME].current.config.admin.tokens)


async def admin_page(request: web.Request) -> web.Response:
    if not admin_enabled(request.app):
        raise web.HTTPNotFound()
    config = request.app[RUNTIME].current.config
    context = {
        "page": "admin",
        "providers": list(config.providers.backends),
        "verification_statuses": VERIFICATION_STATUSES,
        "verification_labels": VERIFICATION_LABELS,
        "max_name": MAX_NAME_LENGTH,
        "max_reason": MAX_REASON_LENGTH,
        "timezone": request.app[CONFIG].server.timezone,  # records' times are in it: shown with them
    }
    response = aiohttp_jinja2.render_template("admin.html", request, context)
    response.headers["Cache-Control"] = "no-store"  # what was typed must not outlive the tab
    return response
