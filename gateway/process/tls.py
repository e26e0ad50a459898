"""The server's TLS context, built from ``server.tls``: HTTPS, and mutual TLS with a client CA.

The config check builds the same context the server will, so every file the server would refuse
(unreadable, not PEM, a key that does not match its certificate) stops ``check-config`` and start-up
with one line naming the key, rather than a traceback in a worker after the port is taken.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config.model import TlsConfig
from gateway.config.reader import ConfigError

__all__ = ["server_context"]

_PATH = "server.tls"


def server_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """The context to serve with (TLS 1.2 at least), or None when ``server.tls`` is off."""
    if not tls.cert and not tls.key and not tls.client_ca:
        return None
    if not tls.cert:
        given = "key" if tls.key else "client_ca"
        raise ConfigError(f"{_PATH}.cert", f"required when {_PATH}.{given} is set")
    if not tls.key:
        raise ConfigError(f"{_PATH}.key", f"required when {_PATH}.cert is set")
    # Not ssl.create_default_context(): for a server it would also trust the system's public CAs
    # to vouch for clients, and mutual TLS must accept only certificates from client_ca.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _check_certificates("cert", tls.cert)
    _readable("key", tls.key)
    try:
        # An encrypted key would make OpenSSL prompt on the terminal: refuse it instead.
        context.load_cert_chain(tls.cert, tls.key, password=lambda: b"")
    except ssl.SSLError:
        raise ConfigError(
            f"{_PATH}.key", f"not a PEM private key (unencrypted) matching {_PATH}.cert"
        ) from None
    if tls.client_ca:
        _check_certificates("client_ca", tls.client_ca)
        context.load_verify_locations(cafile=tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _readable(key: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"{_PATH}.{key}", f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{_PATH}.{key}", f"{path} is not a PEM file") from None


def _check_certificates(key: str, path: str) -> None:
    """The file must hold PEM certificates OpenSSL can parse (a probe context loads them)."""
    text = _readable(key, path)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise ConfigError(f"{_PATH}.{key}", f"{path} holds no PEM certificate") from None
