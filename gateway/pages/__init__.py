"""The human-facing pages: API docs (``/``), the tenant and admin consoles, and the templates and
files the status page (``gateway.status.page``) is rendered with too.

They are rendered with aiohttp-jinja2 from the running configuration, so what they say (addresses,
provider names, limits) is what this gateway does. Their CSS and JS are files served by the gateway
itself (``/static/``): the pages work offline and under a strict Content-Security-Policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway import __version__
from gateway.pages.admin import admin_enabled, admin_page
from gateway.pages.assets import ASSETS, Assets, serve_asset
from gateway.pages.console import console_page
from gateway.pages.docs import docs_page

__all__ = [
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "admin_page",
    "console_page",
    "docs_page",
    "serve_asset",
    "setup_templates",
]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"


def _pretty_json(value: Any) -> str:
    """Examples as a person would type them: indented, Chinese left readable."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def _duration_zh(seconds: int) -> str:
    """``3600`` → ``1 小时``: windows read the way the seed's readers count time."""
    for size, unit in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} 秒"


@jinja2.pass_context
def _admin_on(context: jinja2.runtime.Context) -> bool:
    """The nav links /admin only while it is there (admin.tokens set; a reload may change that)."""
    return admin_enabled(context["app"])


def setup_templates(app: web.Application) -> None:
    """aiohttp-jinja2 over gateway/templates, with ``static(name)`` giving versioned asset URLs."""
    assets = app[ASSETS] = Assets.scan(STATIC_DIR)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in a template is a failing test, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty_json"] = _pretty_json
    env.filters["duration_zh"] = _duration_zh
    env.globals["build_version"] = __version__
    env.globals["static"] = assets.url
    env.globals["admin_on"] = _admin_on
