"""Response headers by who answers: browser hardening for the root app's own pages, and the API's.

The console handles an API secret, so its page must not run script from anywhere else, be framed
by another site (clickjacking), or leak its address in a Referer. The pages need nothing inline —
their CSS and JS are files under /static/ — so the policy can be strict: ``'self'`` and nothing more.
Every answer under /api/ (JSON for programs, not pages; errors, 404 and 405 included) is never
sniffed and never kept by a cache or a proxy (balances, records). A sub-app (the admin API) sets
its own. Every answer names the product, not its stack's versions, and over TLS carries HSTS.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["API_HEADERS", "CONTENT_SECURITY_POLICY", "HSTS", "SERVER", "add_headers", "set_defaults"]

#: Every answer's ``Server``: the product, not aiohttp's and Python's versions for a scanner to match.
SERVER = "sms-edge"
#: Over TLS: browsers must not come back over plain HTTP for a year (subdomains are not ours to say).
HSTS = {"Strict-Transport-Security": "max-age=31536000"}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
API_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
# Every response of the root app's own routes: files included, so none is ever sniffed into
# something executable.
_ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# HTML documents: what the browser may load and who may frame them.
_HTML = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def set_defaults(response: web.StreamResponse, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        response.headers.setdefault(name, value)


def add_headers(request: web.Request, response: web.StreamResponse, *, tls: bool) -> None:
    """The headers of whoever answered: the API, a page of the root app, or a sub-app (its own);
    on every answer the product's ``Server``, and HSTS when it goes over TLS."""
    response.headers["Server"] = SERVER
    if tls:
        set_defaults(response, HSTS)
    if request.path.startswith("/api/"):
        set_defaults(response, API_HEADERS)
    elif len(request.match_info.apps) == 1:  # the root app's own route, or its 404/405
        set_defaults(response, _ALWAYS)
        if response.content_type == "text/html":
            set_defaults(response, _HTML)
