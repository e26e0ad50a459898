"""The start-up lines: the one that tells a person running the demo where to go and which key to use.

It appears only while the demo account of the shipped config/gateway.yaml is configured (an
account seed named ``demo``): a production config has no such account and gets no greeting. The
line names the key but never a secret — log lines end up in journals and log shippers, and no
secret goes into any of them, the public demo one included. It says where the secret is instead,
as the store has it (``demo_secret``): the shipped one, the config's, or one rotated since, which
the config no longer replaces (``gateway.accounts.listed``), so the shipped one is not offered.
"""

from __future__ import annotations

import shlex
from typing import Literal

from gateway.accounts.creation import SHIPPED_DEMO_SECRET
from gateway.accounts.credentials import SecretVerifier
from gateway.config.model import AccountSeed, GatewayConfig
from gateway.store.base import Account, Store

__all__ = ["DEMO_ACCOUNT", "DemoSecret", "demo_secret", "greeting", "shipped_secret_refusal"]

DEMO_ACCOUNT = "demo"  # the seed config/gateway.yaml ships
#: Which secret the demo account has in the store.
DemoSecret = Literal["shipped", "config", "rotated"]
_WHERE = {
    "shipped": "the shipped demo secret (accounts: demo in config/gateway.yaml)",
    "config": "the one you set (SMS_EDGE_DEMO_SECRET or your config)",
    "rotated": "the secret rotate-secret last printed for it (the config's no longer works)",
}
# Listening on every address: a person on this machine reaches it on loopback.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104


def _demo_seed(config: GatewayConfig) -> AccountSeed | None:
    return next((seed for seed in config.accounts if seed.name == DEMO_ACCOUNT), None)


async def demo_secret(store: Store, config: GatewayConfig) -> DemoSecret | None:
    """Which secret the configured demo account has now, by its stored hash; None without one."""
    seed = _demo_seed(config)
    account = await store.account_by_key(seed.api_key) if seed else None
    if seed is None or account is None:
        return None
    verifier = SecretVerifier()
    if await verifier.verify(SHIPPED_DEMO_SECRET, account.secret_hash):
        return "shipped"
    return "config" if await verifier.verify(seed.api_secret, account.secret_hash) else "rotated"


def _base_url(config: GatewayConfig) -> str:
    if config.server.public_url:
        return config.server.public_url
    host = config.server.host
    host = _ANY_ADDRESS.get(host, f"[{host}]" if ":" in host else host)
    return f"{config.server.tls.scheme}://{host}:{config.server.port}"


def greeting(config: GatewayConfig, secret: DemoSecret | None) -> str | None:
    """One line: docs, console, status (and admin, when on) URLs, the demo key and where its
    ``secret`` is; ``None`` without the demo account."""
    demo = _demo_seed(config)
    if demo is None or secret is None:
        return None
    base = _base_url(config)
    admin = f" · admin {base}/admin" if config.admin.tokens else ""
    return (
        f"Welcome to SMS Edge: docs {base}/ · console {base}/console · status {base}/status{admin}"
        f" — sign in with the demo key {demo.api_key} and {_WHERE[secret]}"
    )


def shipped_secret_refusal(host: str, accounts: list[Account], config_path: str | None) -> str:
    """One line: which accounts, and commands that retire the secret for good (a rotated secret
    stays until the config's own api_secret changes: ``gateway.accounts.listed``)."""
    config = f" --config {shlex.quote(config_path)}" if config_path else ""
    rotate = " / ".join(
        f'"python run.py accounts rotate-secret --key {account.api_key}{config}"' for account in accounts
    )
    return (
        f"refusing to listen on {host}: account(s) {', '.join(repr(a.name) for a in accounts)} still"
        f" have the shipped demo secret; retire it with {rotate} (the new secret stays until the"
        " config's api_secret changes), or set another api_secret in the config"
        " (SMS_EDGE_DEMO_SECRET for demo), or disable the account (accounts set --disabled true)"
    )
