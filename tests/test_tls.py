"""TLS on the edge (``server.tls``): the seed's own examples over HTTPS, mutual TLS, config refusals.

A throwaway CA made with the ``openssl`` CLI signs a certificate for 127.0.0.1 and localhost; real
gateway processes serve with it and the real curl and the seed's Python example call them, trusting
the CA the way their users would (``CURL_CA_BUNDLE``, ``REQUESTS_CA_BUNDLE``), with only the host
of the seed text changed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.config.loader import parse_config
from gateway.process.greeting import greeting
from tests.certificates import TestAuthority
from tests.conftest import DEMO_KEY, DEMO_SECRET, default_document, without_limits
from tests.gateway_process import GatewayProcess
from tests.seed import run_curl, run_python, seed_example
from tests.test_config import assert_refused, broken_config, check_config
from tests.test_fleet import fleet_document
from tests.test_live import swap

HEADERS = {"X-API-Key": DEMO_KEY, "X-API-Secret": DEMO_SECRET}


class Pki:
    """The test's CA, the gateway's certificate, a client certificate, and one from a stranger CA."""

    def __init__(self, directory: Path) -> None:
        self.ca = TestAuthority(directory)
        self.server = self.ca.issue("server", usage="serverAuth", alt_names="DNS:localhost,IP:127.0.0.1")
        self.client = self.ca.issue("client", usage="clientAuth")
        self.stranger_ca = TestAuthority(directory, "stranger")
        self.stranger = self.stranger_ca.issue("stranger", usage="clientAuth")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def tls_section(pki: Pki, *, mutual: bool = False) -> dict[str, str]:
    cert, key = pki.server
    return {"cert": str(cert), "key": str(key), "client_ca": str(pki.ca.cert) if mutual else ""}


@pytest.fixture
def start(tmp_path: Path, pki: Pki) -> Iterator[Callable[..., GatewayProcess]]:
    """Start TLS gateways (the default config, or ``document``); all are stopped afterwards."""
    started: list[GatewayProcess] = []

    def launch(*, mutual: bool = False, document: dict[str, Any] | None = None) -> GatewayProcess:
        if document is None:
            document = without_limits(default_document())
            document["store"]["path"] = str(tmp_path / f"tls-{len(started)}.db")
        document["server"]["tls"] = tls_section(pki, mutual=mutual)
        options = {"verify": str(pki.ca.cert), "cert": pki.client if mutual else None}
        started.append(
            GatewayProcess(document, tmp_path, name=f"tls-{len(started)}", requests_options=options)
        )
        return started[-1]

    yield launch
    for gateway in started:
        gateway.stop()


def curl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real curl, answering with the body then the HTTP status (000: no HTTP answer at all)."""
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", "--write-out", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_seed_curl_example_runs_over_https_with_only_the_host_changed(start, pki):
    gateway = start()
    command = swap(seed_example("send.sh"), gateway.url)
    assert command.startswith(f'curl -X POST "https://127.0.0.1:{gateway.port}/api/sms/send"')
    body = run_curl(command, "--silent", "--show-error", env={"CURL_CA_BUNDLE": str(pki.ca.cert)})
    assert body["success"] is True
    assert body["data"]["phone"] == "138****8000"


def test_the_seed_python_example_runs_over_https_with_only_the_host_changed(start, pki):
    gateway = start()
    script = swap(seed_example("send.py"), gateway.url)
    assert f"'https://127.0.0.1:{gateway.port}/api/sms/send'" in script
    printed = run_python(script, env={"REQUESTS_CA_BUNDLE": str(pki.ca.cert)})
    assert "'success': True" in printed
    assert "'phone': '138****8000'" in printed


def test_the_certificate_is_really_checked_and_plain_http_gets_no_answer(start, pki):
    gateway = start()
    trusted = curl(f"https://localhost:{gateway.port}/healthz", env={"CURL_CA_BUNDLE": str(pki.ca.cert)})
    assert trusted.stdout.endswith("200")  # the name localhost is in the certificate too
    untrusted = curl(
        f"https://localhost:{gateway.port}/healthz", env={"CURL_CA_BUNDLE": str(pki.stranger_ca.cert)}
    )
    assert (untrusted.returncode, untrusted.stdout) == (60, "\n000")  # 60: peer certificate not trusted
    plain = curl(f"http://127.0.0.1:{gateway.port}/healthz")
    assert plain.returncode != 0 and plain.stdout.endswith("000")
    assert gateway.process.poll() is None  # neither took the gateway down


def test_tls_below_1_2_is_refused(start, pki):
    gateway = start()
    # SECLEVEL=0 lets this curl offer TLS 1.0/1.1 (it does, to `openssl s_server -tls1_1`), so the
    # refusal is the gateway's.
    old = curl(
        "--tlsv1.0",
        "--tls-max",
        "1.1",
        "--ciphers",
        "DEFAULT@SECLEVEL=0",
        "--cacert",
        str(pki.ca.cert),
        f"{gateway.url}/healthz",
    )
    assert old.returncode != 0 and old.stdout.endswith("000")
    current = curl("--tlsv1.2", "--tls-max", "1.2", "--cacert", str(pki.ca.cert), f"{gateway.url}/healthz")
    assert current.stdout.endswith("200")


def test_the_docs_page_examples_name_the_https_address(start, pki):
    gateway = start()
    page = requests.get(f"https://localhost:{gateway.port}/", verify=str(pki.ca.cert), timeout=10)
    html = unescape(page.text)
    assert f'curl -X POST "https://127.0.0.1:{gateway.port}/api/sms/send"' in html
    assert f"http://127.0.0.1:{gateway.port}" not in html


def test_mutual_tls_refuses_clients_without_a_certificate_from_the_client_ca(start, pki):
    gateway = start(mutual=True)
    ca = ("--cacert", str(pki.ca.cert))
    url = f"{gateway.url}/api/account/info"
    anonymous = curl(*ca, "-H", f"X-API-Key: {DEMO_KEY}", "-H", f"X-API-Secret: {DEMO_SECRET}", url)
    assert anonymous.returncode != 0 and anonymous.stdout.endswith("000")
    # In TLS 1.2 the client sees its certificate missed before the handshake ends: curl's
    # "SSL connect error" (35). TLS 1.3 lets the client finish first; the server then hangs up.
    handshake = curl(*ca, "--tls-max", "1.2", url)
    assert (handshake.returncode, handshake.stdout) == (35, "\n000")
    stranger_cert, stranger_key = pki.stranger
    stranger = curl(*ca, "--cert", str(stranger_cert), "--key", str(stranger_key), url)
    assert stranger.returncode != 0 and stranger.stdout.endswith("000")
    cert, key = pki.client
    known = curl(
        *ca,
        "--cert",
        str(cert),
        "--key",
        str(key),
        "-H",
        f"X-API-Key: {DEMO_KEY}",
        "-H",
        f"X-API-Secret: {DEMO_SECRET}",
        url,
    )
    assert known.stdout.endswith("200"), known.stderr
    assert json.loads(known.stdout.rsplit("\n", 1)[0])["success"] is True


def test_every_worker_serves_tls(start, pki, tmp_path, redis_server):
    document = fleet_document(tmp_path, redis_server.url, "sqlite")
    document["server"]["workers"] = 2
    gateway = start(document=document)
    # New connections each time: the kernel spreads them over both workers' sockets.
    answers = [requests.get(f"{gateway.url}/healthz", verify=str(pki.ca.cert), timeout=10) for _ in range(20)]
    assert {answer.status_code for answer in answers} == {200}
    plain = curl(f"http://127.0.0.1:{gateway.port}/healthz")
    assert plain.stdout.endswith("000")


@pytest.fixture
def files(tmp_path: Path, pki: Pki) -> dict[str, str]:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n", encoding="ascii")
    return {
        "cert": str(pki.server[0]),
        "key": str(pki.server[1]),
        "ca": str(pki.ca.cert),
        "ca_key": str(pki.ca.key),
        "missing": str(tmp_path / "missing.pem"),
        "directory": str(tmp_path),
        "not_pem": str(not_pem),
    }


@pytest.mark.parametrize(
    ("tls", "line"),
    [
        ({"cert": "cert"}, "server.tls.key: required when server.tls.cert is set"),
        ({"key": "key"}, "server.tls.cert: required when server.tls.key is set"),
        ({"client_ca": "ca"}, "server.tls.cert: required when server.tls.client_ca is set"),
        (
            {"cert": "missing", "key": "key"},
            "server.tls.cert: cannot read {missing}: No such file or directory",
        ),
        ({"cert": "directory", "key": "key"}, "server.tls.cert: cannot read {directory}: Is a directory"),
        ({"cert": "not_pem", "key": "key"}, "server.tls.cert: {not_pem} holds no PEM certificate"),
        (
            {"cert": "cert", "key": "missing"},
            "server.tls.key: cannot read {missing}: No such file or directory",
        ),
        (
            {"cert": "cert", "key": "ca_key"},
            "server.tls.key: not a PEM private key (unencrypted) matching server.tls.cert",
        ),
        (
            {"cert": "cert", "key": "cert"},
            "server.tls.key: not a PEM private key (unencrypted) matching server.tls.cert",
        ),
        (
            {"cert": "cert", "key": "key", "client_ca": "not_pem"},
            "server.tls.client_ca: {not_pem} holds no PEM certificate",
        ),
    ],
)
def test_check_config_refuses_a_bad_tls_section_in_one_line(tmp_path, files, tls, line):
    section = {key: files[name] for key, name in tls.items()}
    result = check_config("check-config", "--config", str(broken_config(tmp_path, tls=section)))
    assert_refused(result, line.format(**files))


def test_check_config_refuses_an_http_public_url_with_tls_and_accepts_a_good_section(tmp_path, pki):
    tls = tls_section(pki, mutual=True)
    http = broken_config(tmp_path, tls=tls, public_url="http://sms.example.test")
    assert_refused(
        check_config("check-config", "--config", str(http)),
        "server.public_url: must be an https:// URL when server.tls is on",
    )
    good = check_config("check-config", "--config", str(broken_config(tmp_path, tls=tls)))
    assert (good.returncode, good.stdout) == (0, "ok\n")


def test_the_greeting_names_https_addresses_when_tls_is_on(pki):
    document = default_document()
    document["server"]["tls"] = tls_section(pki)
    line = greeting(parse_config(document), "shipped")
    assert line is not None
    assert "docs https://127.0.0.1:8080/ · console https://127.0.0.1:8080/console" in line


def test_answers_over_tls_carry_hsts_and_no_server_version(start, pki):
    gateway = start()
    for path in ("/healthz", "/api/account/info", "/", "/no/such/page"):
        response = requests.get(f"{gateway.url}{path}", timeout=10, **gateway.requests_options)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
        assert response.headers["Server"] == "sms-edge", path
