"""Browser hardening headers for what the root app serves itself: the docs, console and status pages.

The console handles an API secret, so its page must not run script from anywhere else, be framed
by another site (clickjacking), or leak its address in a Referer. The pages need nothing inline —
their CSS and JS are files under /static/ — so the policy can be strict: ``'self'`` and nothing more.
A sub-app answers with headers of its own: the API at /api/ (JSON for programs, not pages) sets
``gateway.api.API_HEADERS`` on every answer, errors included.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["CONTENT_SECURITY_POLICY", "security_headers"]

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# Every response of the root app's own routes: files included, so none is ever sniffed into
# something executable.
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# HTML documents: what the browser may load and who may frame them.
_HTML = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def security_headers() -> web.middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.app is not request.match_info.apps[0]:  # a sub-app's route: its own headers
            return response
        for name, value in _ALWAYS.items():
            response.headers.setdefault(name, value)
        if response.content_type == "text/html":
            for name, value in _HTML.items():
                response.headers.setdefault(name, value)
        return response

    return middleware
