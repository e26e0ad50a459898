"""A throwaway certificate authority made with the real ``openssl`` CLI (no Python crypto package).

Certificates carry the extensions strict verifiers ask for (key identifiers, basic constraints,
extended key usage), so a failure in a TLS test is the gateway's, not the test certificate's.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

__all__ = ["TestAuthority"]

_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


class TestAuthority:
    """A CA in ``directory`` (``<name>-ca.crt``) that issues server and client certificates."""

    __test__ = False  # a helper, not a test class for pytest to collect

    def __init__(self, directory: Path, name: str = "test") -> None:
        self.directory = directory
        self.cert = directory / f"{name}-ca.crt"
        self.key = directory / f"{name}-ca.key"
        _openssl(
            "req",
            "-x509",
            *_EC_KEY,
            "-keyout",
            str(self.key),
            "-out",
            str(self.cert),
            "-days",
            "2",
            "-subj",
            f"/CN=SMS Edge {name} CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )

    def issue(self, name: str, *, usage: str, alt_names: str = "") -> tuple[Path, Path]:
        """A certificate and its key for ``usage`` (serverAuth or clientAuth), signed by this CA."""
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        request, extensions = self.directory / f"{name}.csr", self.directory / f"{name}.ext"
        lines = [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature",
            f"extendedKeyUsage={usage}",
            "subjectKeyIdentifier=hash",
            "authorityKeyIdentifier=keyid,issuer",
        ]
        if alt_names:
            lines.append(f"subjectAltName={alt_names}")
        extensions.write_text("\n".join(lines) + "\n", encoding="ascii")
        _openssl("req", "-new", *_EC_KEY, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
        _openssl(
            "x509",
            "-req",
            "-in",
            str(request),
            "-CA",
            str(self.cert),
            "-CAkey",
            str(self.key),
            "-set_serial",
            str(secrets.randbits(63)),
            "-days",
            "2",
            "-extfile",
            str(extensions),
            "-out",
            str(cert),
        )
        return cert, key
