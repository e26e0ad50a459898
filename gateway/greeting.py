"""The start-up line that tells a person running the demo where to go and which key to use.

It appears only while the demo account of the shipped config/gateway.yaml is configured (an
account seed named ``demo``): a production config has no such account and gets no greeting. The
line names the key but never a secret — log lines end up in journals and log shippers, and no
secret goes into any of them, the public demo one included. It says where the secret is instead.
"""

from __future__ import annotations

from gateway.accounts import SHIPPED_DEMO_SECRET
from gateway.config.model import GatewayConfig

__all__ = ["DEMO_ACCOUNT", "greeting"]

DEMO_ACCOUNT = "demo"  # the seed config/gateway.yaml ships
# Listening on every address: a person on this machine reaches it on loopback.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104


def _base_url(config: GatewayConfig) -> str:
    if config.server.public_url:
        return config.server.public_url
    host = config.server.host
    host = _ANY_ADDRESS.get(host, f"[{host}]" if ":" in host else host)
    return f"{config.server.tls.scheme}://{host}:{config.server.port}"


def greeting(config: GatewayConfig) -> str | None:
    """One line: docs, console, status (and admin, when on) URLs and the demo key; ``None`` without
    the demo account."""
    demo = next((seed for seed in config.accounts if seed.name == DEMO_ACCOUNT), None)
    if demo is None:
        return None
    if demo.api_secret == SHIPPED_DEMO_SECRET:
        hint = "the shipped demo secret (accounts: demo in config/gateway.yaml)"
    else:
        hint = "the one you set (SMS_EDGE_DEMO_SECRET or your config)"
    base = _base_url(config)
    admin = f" · admin {base}/admin" if config.admin.tokens else ""
    return (
        f"Welcome to SMS Edge: docs {base}/ · console {base}/console · status {base}/status{admin}"
        f" — sign in with the demo key {demo.api_key} and {hint}"
    )
