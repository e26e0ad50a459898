"""GET /console: the operator console, a static shell that talks to the JSON API from the browser.

The server renders only what is public and configured (provider names, the page-size limit); the
account's data comes from ``/api/`` with the key and secret the person types in, held by the page
in memory and ``sessionStorage`` only (never ``localStorage``, never a cookie).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from gateway.api.models import MAX_PER_PAGE
from gateway.keys import CONFIG, RUNTIME

__all__ = ["console_page"]

PAGE_SIZES = (10, 20, 50, 100)


async def console_page(request: web.Request) -> web.Response:
    config = request.app[RUNTIME].current.config  # the reloadable parts as now in force
    context = {
        "page": "console",
        "providers": list(config.providers.backends),
        "default_provider": config.providers.default,
        "page_sizes": [size for size in PAGE_SIZES if size <= MAX_PER_PAGE],
        "timezone": request.app[CONFIG].server.timezone,  # records' times are in it: shown with them
    }
    response = aiohttp_jinja2.render_template("console.html", request, context)
    # The shell itself holds nothing private, but what the person typed should not outlive the tab.
    response.headers["Cache-Control"] = "no-store"
    return response
