"""The carrier contract, run over every carrier this package registers (tests/fakes/cases.py).

What any carrier must do whatever its protocol: be found by its entry point under its own name,
send a batch in one call, fail a whole call with the right FailureKind, name transport trouble the
way gateway.carriers.http does, keep numbers and secrets out of logs and reprs, read its options
with errors that name the key, and document its error table. The carriers' own protocols (request
shapes, signatures, how they split or resend) are tested in tests/test_<carrier>_plugin.py.
"""

from __future__ import annotations

import logging
import re
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.carriers.base import FailureKind, MalformedReceipts
from gateway.carriers.registry import ENTRY_POINT_GROUP, carrier_class
from gateway.config.reader import ConfigError
from tests.fakes import Fault, refused
from tests.fakes.cases import CASES, CarrierCase, Rig, mainland, make_batch

REMOTE = [case for case in CASES if case.remote is not None]


def named(case: CarrierCase) -> str:
    return case.name


#: the tests that need an upstream run over the carriers that have one
over_remote = pytest.mark.parametrize("case", REMOTE, ids=named)


@pytest.fixture(params=CASES, ids=named)
def case(request: pytest.FixtureRequest) -> CarrierCase:
    return request.param


@pytest.fixture
async def rig(case: CarrierCase, aiohttp_server: Any, session: aiohttp.ClientSession) -> Rig:
    return await Rig.start(case, aiohttp_server, session)


def calls(rig: Rig) -> int:
    """How many requests the fake upstream received (0 for the mock, which has none)."""
    return 0 if rig.upstream is None else len(rig.upstream.requests)


# -- registration ----------------------------------------------------------------------------------


def test_every_carrier_of_the_package_has_a_case() -> None:
    ours = {e.name for e in entry_points(group=ENTRY_POINT_GROUP) if e.value.startswith("plugins.")}
    assert ours == {case.name for case in CASES}


def test_the_entry_point_names_a_carrier_of_that_name(case: CarrierCase) -> None:
    cls = carrier_class(case.name)
    assert cls.name == case.name
    assert cls.__module__ == f"plugins.{case.name}"  # a package (or the mock's module) of its own


# -- sending ---------------------------------------------------------------------------------------


async def test_an_empty_batch_calls_nobody(rig: Rig) -> None:
    assert await rig.carrier.send(make_batch()) == []
    assert calls(rig) == 0


async def test_one_number_is_accepted_with_a_carrier_id(rig: Rig, case: CarrierCase) -> None:
    [outcome] = await rig.carrier.send(make_batch("+8613800138000"))
    assert (outcome.e164, outcome.accepted, outcome.kind) == ("+8613800138000", True, None)
    assert outcome.carrier_id
    assert calls(rig) == (1 if case.remote else 0)


async def test_a_full_batch_is_one_call(rig: Rig, case: CarrierCase) -> None:
    phones = mainland(rig.carrier.max_batch, "+86139")
    outcomes = await rig.carrier.send(make_batch(*phones))
    assert [o.e164 for o in outcomes] == phones
    assert all(o.accepted and o.carrier_id for o in outcomes)
    assert calls(rig) == (1 if case.remote else 0)


@over_remote
async def test_one_refused_number_fails_alone(rig: Rig, case: CarrierCase) -> None:
    assert case.remote is not None
    phones = mainland(3)
    rig.upstream.number_codes = {phones[1]: case.remote.number_refusal}
    first, refused_one, last = await rig.carrier.send(make_batch(*phones))
    assert first.accepted and last.accepted
    assert (refused_one.accepted, refused_one.kind, refused_one.code, refused_one.carrier_id) == (
        False,
        FailureKind.CALLER,
        case.remote.number_refusal,
        None,
    )
    assert refused_one.message


# -- whole-call refusals ---------------------------------------------------------------------------


def per_remote(table: str) -> Any:
    """Parametrize over (case, key, value) for each entry of a mapping or pair list of each Remote."""
    rows = [(case, *row) for case in REMOTE for row in dict(getattr(case.remote, table)).items()]
    return pytest.mark.parametrize(
        ("case", "key", "value"), rows, ids=[f"{case.name}-{key}" for case, key, _ in rows]
    )


@per_remote("wrong_credentials")
async def test_wrong_credentials_are_permanent_for_every_number(
    case: CarrierCase, aiohttp_server: Any, session: aiohttp.ClientSession, key: str, value: str
) -> None:
    rig = await Rig.start(case, aiohttp_server, session, **{key: "somebody-else"})
    batch = make_batch("+8613800138000")
    error = await refused(rig.carrier, batch)
    assert (error.kind, error.code) == (FailureKind.PERMANENT, value)
    assert [(o.accepted, o.kind) for o in error.outcomes(batch)] == [(False, FailureKind.PERMANENT)]


@over_remote
async def test_a_stale_timestamp_is_permanent(rig: Rig, case: CarrierCase) -> None:
    assert case.remote is not None
    offset, code = case.remote.stale
    rig.upstream.clock = lambda: time.time() + offset
    error = await refused(rig.carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.PERMANENT, code)


@per_remote("call_errors")
async def test_a_call_error_code_has_its_kind(rig: Rig, key: str, value: FailureKind) -> None:
    rig.upstream.error_code = key
    error = await refused(rig.carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (value, key)
    assert error.message


# -- transport trouble (gateway.carriers.http) -----------------------------------------------------


@over_remote
@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.HTTP_500, "HTTP_500"),
        (Fault.SLOW, "TIMEOUT"),
        (Fault.RESET, "NETWORK_ERROR"),
        (Fault.MALFORMED_JSON, "BAD_RESPONSE"),
    ],
)
async def test_transport_faults_are_retryable_and_a_timeout_is_unknown(
    case: CarrierCase, aiohttp_server: Any, session: aiohttp.ClientSession, fault: Fault, code: str
) -> None:
    rig = await Rig.start(case, aiohttp_server, session, timeout=0.2)
    rig.upstream.fault, rig.upstream.delay = fault, 2.0
    error = await refused(rig.carrier, make_batch("+8613800138000", "+8613900139000"))
    # A timeout leaves the outcome unknown: the core decides whether trying again is safe.
    expected = FailureKind.TIMEOUT if fault is Fault.SLOW else FailureKind.RETRYABLE
    assert (error.kind, error.code) == (expected, code)
    assert len(rig.upstream.requests) == 1  # transport trouble is never resent by the plugin


@over_remote
async def test_connection_refused_is_retryable(
    case: CarrierCase, session: aiohttp.ClientSession, unused_tcp_port: int
) -> None:
    carrier = case.build(session, f"http://127.0.0.1:{unused_tcp_port}/")
    error = await refused(carrier, make_batch("+8613800138000"))
    assert (error.kind, error.code) == (FailureKind.RETRYABLE, "NETWORK_ERROR")


# -- logs, options, receipts, documentation ---------------------------------------------------------


@over_remote
async def test_logs_hold_no_number_or_secret(
    rig: Rig, case: CarrierCase, caplog: pytest.LogCaptureFixture
) -> None:
    assert case.remote is not None
    rig.upstream.number_codes = {"+8613800138001": case.remote.number_refusal}
    with caplog.at_level(logging.DEBUG):
        await rig.carrier.send(make_batch("+8613800138000", "+8613800138001"))
    assert case.remote.log_line in caplog.text
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("plugins", "gateway.carriers"))
    )
    assert "13800138" not in ours and case.options[case.remote.secret] not in ours


@over_remote
@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_secret_names_the_key(case: CarrierCase, missing: str | None) -> None:
    assert case.remote is not None
    with pytest.raises(ConfigError) as caught:
        case.read_options({**case.options, case.remote.secret: missing})
    assert str(caught.value) == f"{case.path}.{case.remote.secret}: required"


BAD_ENDPOINTS = {
    "no scheme": "sms.example.com",
    "a path": "/v1/messages",
    "not http": "ftp://sms.example.com",
    "credentials": "https://user:pw@sms.example.com/",
    "a query": "https://sms.example.com/?region=x",
    "unparsable": "http://[::1",
    "port out of range": "http://sms.example.com:99999/",
}


@over_remote
@pytest.mark.parametrize("endpoint", BAD_ENDPOINTS.values(), ids=BAD_ENDPOINTS.keys())
def test_a_bad_endpoint_names_the_key(case: CarrierCase, endpoint: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(case.path)}\.endpoint: "):
        case.read_options({**case.options, "endpoint": endpoint})


@over_remote
def test_the_default_endpoint_and_a_repr_without_the_secret(case: CarrierCase) -> None:
    assert case.remote is not None
    options = case.read_options({**case.options, case.remote.secret: "hush-hush-0123"})
    assert str(options.endpoint) == case.remote.default_endpoint
    assert "hush-hush-0123" not in repr(options)


def test_an_unknown_option_names_the_key(case: CarrierCase, session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(case.path)}\.colour: unknown key$"):
        case.build(session, colour="red")


def test_receipts_are_read_or_declined(case: CarrierCase, session: aiohttp.ClientSession) -> None:
    carrier = case.build(session, "http://127.0.0.1:9/" if case.remote else None)
    if carrier.parse_receipts(b"[]") is None:
        return  # a carrier without receipts: the gateway answers its callback path 404
    with pytest.raises(MalformedReceipts):
        carrier.parse_receipts(b"{not json")
    status, reply = carrier.receipt_reply()
    assert status == 200 and isinstance(reply, dict)


def doc_table(heading: str) -> dict[str, str]:
    """``code -> kind`` from one table of docs/carriers.md, so the docs cannot drift."""
    text = (Path(__file__).parents[1] / "docs" / "carriers.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \|[^|]*\| (\w+) \|", section, flags=re.MULTILINE)
    return dict(rows)


@over_remote
def test_the_error_table_is_documented(case: CarrierCase) -> None:
    assert case.remote is not None
    assert doc_table(case.remote.doc_heading) == {c: k.value for c, k in case.remote.errors.items()}
    assert case.remote.classify("Never.Seen") is FailureKind.PERMANENT
