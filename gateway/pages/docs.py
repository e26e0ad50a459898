"""GET /: the API documentation, in the seed's structure, filled in from the running config.

The examples are meant to be copied and run: they name the address this page was requested on,
the configured providers and the real limits, and only the credentials are placeholders (the page
never shows a key or a secret).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from gateway.api.models import MAX_BATCH, MAX_PARAM_LENGTH, MAX_PARAMS, MAX_PER_PAGE
from gateway.config.model import GatewayConfig
from gateway.keys import RUNTIME
from gateway.money import yuan_text
from gateway.pages.examples import code_examples

__all__ = ["KEY_PLACEHOLDER", "SECRET_PLACEHOLDER", "base_url", "docs_page"]

# The seed's own placeholders, so its examples and ours swap credentials the same way.
KEY_PLACEHOLDER = "sk_xxxxxxxxxxxxxxxx"
SECRET_PLACEHOLDER = "xxxxxxxxxxxxxxxx"  # noqa: S105 (a placeholder, shown instead of a secret)
DEFAULT_PER_PAGE = 10


def base_url(request: web.Request, config: GatewayConfig) -> str:
    """The address the page's examples call: ``server.public_url``, else where this request arrived.

    Never the Host header: it is the caller's text, and a page that reflects it can be made (by a
    forged header and a shared cache) to send readers' credentials elsewhere. The local address of
    the connection is what the reader really reached.
    """
    if config.server.public_url:
        return config.server.public_url
    scheme = "https" if request.secure else "http"
    local = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(local, tuple):
        host, port = local[0], local[1]
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
    return f"{scheme}://{config.server.host}:{config.server.port}"


def _limits(config: GatewayConfig) -> dict[str, object]:
    bucket = config.ratelimit.account
    return {
        "max_batch": MAX_BATCH,
        "default_per_page": DEFAULT_PER_PAGE,
        "max_per_page": MAX_PER_PAGE,
        "max_params": MAX_PARAMS,
        "max_param_length": MAX_PARAM_LENGTH,
        "max_body_bytes": config.server.max_body_bytes,
        "account_rate": f"{bucket.rate:g}",
        "account_burst": bucket.burst,
        "phone_windows": [(window.limit, window.seconds) for window in config.ratelimit.phone],
        "timezone": config.server.timezone,
    }


def _providers(config: GatewayConfig) -> dict[str, object]:
    names = list(config.providers.backends)
    return {
        "names": names,
        "default": config.providers.default,
        "failover": list(config.providers.failover),
        "prices": {
            name: yuan_text(backend.price_milli) for name, backend in config.providers.backends.items()
        },
    }


async def docs_page(request: web.Request) -> web.Response:
    config = request.app[RUNTIME].current.config  # the reloadable parts as now in force
    base = base_url(request, config)
    context = {
        "page": "docs",
        "base_url": base,
        "examples": code_examples(base, KEY_PLACEHOLDER, SECRET_PLACEHOLDER, DEFAULT_PER_PAGE),
        "providers": _providers(config),
        "limits": _limits(config),
    }
    return aiohttp_jinja2.render_template("docs.html", request, context)
