"""Browser hardening headers for everything outside /api/: the docs, console and status pages.

The console handles an API secret, so its page must not run script from anywhere else, be framed
by another site (clickjacking), or leak its address in a Referer. The pages need nothing inline —
their CSS and JS are files under /static/ — so the policy can be strict: ``'self'`` and nothing more.
/api/ answers JSON to programs, not pages: it only gets ``API_HEADERS`` (nosniff, no-store), added by
``request_context`` so that every /api/ answer has them, errors included.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["API_HEADERS", "CONTENT_SECURITY_POLICY", "security_headers"]

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
# Every /api/ answer, errors included: never sniffed, never kept by a cache or a proxy (balances,
# records). Set by ``request_context``, the outermost layer, so refusals from auth, rate limiting
# and routing carry them too.
API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
# Every response outside /api/: files included, so none is ever sniffed into something executable.
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
        if request.path.startswith("/api/"):
            return response
        for name, value in _ALWAYS.items():
            response.headers.setdefault(name, value)
        if response.content_type == "text/html":
            for name, value in _HTML.items():
                response.headers.setdefault(name, value)
        return response

    return middleware
