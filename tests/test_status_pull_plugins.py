"""Status pulls over loopback: Tencent's ``PullSmsSendStatusByPhoneNumber`` and Aliyun's
``QuerySendDetails``, asked through ``pull_statuses`` about the records whose receipt never came.

The fakes answer from the messages they accepted and the final word each was given, and check the
signature and the parameters as the carriers do, so every request the plugins make is one the
carrier would take (docs/carriers.md, "Status query").
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest

from gateway.carriers.base import CarrierError, FailureKind, Outcome, Receipt, StatusQuery
from gateway.carriers.pulling import gather_answers
from plugins.aliyun import status as aliyun_status
from plugins.aliyun.status import QUERY_ACTION
from plugins.tencent import status as tencent_status
from plugins.tencent.status import PULL_ACTION
from tests.fakes import Fault, Report
from tests.fakes.aliyun import sms_reports
from tests.fakes.cases import ALIYUN, TENCENT, CarrierCase, Rig, mainland, make_batch

DELIVERED = {"tencent": "DELIVRD", "aliyun": "DELIVERED"}  # each carrier's word, pushed or pulled
RETRYABLE_CODE = {"tencent": "RequestLimitExceeded", "aliyun": "Throttling.User"}
DAY = 86400


@pytest.fixture(params=[TENCENT, ALIYUN], ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> CarrierCase:
    return request.param


@pytest.fixture
async def rig(case: CarrierCase, aiohttp_server: Any, session: aiohttp.ClientSession) -> Rig:
    return await Rig.start(case, aiohttp_server, session)


def now_ms() -> int:
    return int(time.time() * 1000)


async def sent(rig: Rig, *phones: str, written: int | None = None) -> tuple[list[Outcome], list[StatusQuery]]:
    """Send to ``phones`` in one batch; the outcomes, and a query for each, as the core writes them
    (``written``: when the records were, in ms; just now by default)."""
    written = now_ms() if written is None else written
    outcomes = await rig.carrier.send(make_batch(*phones))
    assert all(outcome.accepted and outcome.carrier_id for outcome in outcomes)
    return outcomes, [StatusQuery(str(o.carrier_id), o.e164, written) for o in outcomes]


def pulls(rig: Rig) -> list[dict[str, Any]]:
    """The parameters of every status query the fake received, in order."""
    if rig.carrier.name == "tencent":
        return [r.json() for r in rig.upstream.requests if r.headers.get("X-TC-Action") == PULL_ACTION]
    return [r.query for r in rig.upstream.requests if r.headers.get("x-acs-action") == QUERY_ACTION]


def summary(receipts: list[Receipt]) -> list[tuple[str, str, bool, str]]:
    return sorted((r.e164, r.carrier_id, r.delivered, r.code) for r in receipts)


# -- what comes back -------------------------------------------------------------------------------


async def test_delivered_and_failed_come_back_and_the_waiting_are_left_out(
    rig: Rig, case: CarrierCase
) -> None:
    (delivered, failed, waiting), queries = await sent(rig, *mainland(3))
    rig.upstream.reports = {
        (delivered.carrier_id, delivered.e164): Report(delivered=True),
        (failed.carrier_id, failed.e164): Report(delivered=False, code="MK:0001"),
    }
    unknown = StatusQuery("9" + queries[0].carrier_id, queries[0].e164, queries[0].sent_ms)
    receipts = await rig.carrier.pull_statuses([*queries, unknown])
    assert summary(receipts) == [
        (delivered.e164, str(delivered.carrier_id), True, DELIVERED[case.name]),
        (failed.e164, str(failed.carrier_id), False, "MK:0001"),
    ]
    assert all(r.reported_at for r in receipts)
    assert waiting.e164 not in {r.e164 for r in receipts}


async def test_nothing_to_ask_calls_nobody(rig: Rig) -> None:
    assert await rig.carrier.pull_statuses([]) == []
    assert rig.upstream.requests == []


async def test_a_pulled_aliyun_receipt_reads_as_the_pushed_one(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    rig = await Rig.start(ALIYUN, aiohttp_server, session)
    (_, second), queries = await sent(rig, "+8613800138000", "+85261234567")
    rig.upstream.reports = {(second.carrier_id, second.e164): Report(delivered=False, code="IC:0055")}
    rig.upstream.default_report = Report(delivered=True)
    pushed = rig.carrier.parse_receipts(orjson.dumps(sms_reports(rig.upstream)))
    pulled = await rig.carrier.pull_statuses(queries)
    assert summary(pulled) == summary(pushed) and len(pulled) == 2


# -- failures ----------------------------------------------------------------------------------------


async def test_a_wrong_secret_gets_the_carriers_refusal(
    case: CarrierCase, aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    assert case.remote is not None
    rig = await Rig.start(case, aiohttp_server, session, **{case.remote.secret: "not-it"})
    with pytest.raises(CarrierError) as caught:
        await rig.carrier.pull_statuses([StatusQuery("2433:1^0", "+8613800138000", now_ms())])
    code = case.remote.wrong_credentials[case.remote.secret]
    assert (caught.value.kind, caught.value.code) == (FailureKind.PERMANENT, code)
    assert len(pulls(rig)) == 1  # the query itself was signed, and refused


async def test_a_refused_pull_has_the_kind_of_its_code(rig: Rig, case: CarrierCase) -> None:
    _, queries = await sent(rig, *mainland(2))
    rig.upstream.error_code = RETRYABLE_CODE[case.name]
    with pytest.raises(CarrierError) as caught:
        await rig.carrier.pull_statuses(queries)
    assert (caught.value.kind, caught.value.code) == (FailureKind.RETRYABLE, RETRYABLE_CODE[case.name])


@pytest.mark.parametrize("fault", [Fault.MALFORMED_JSON, Fault.HTTP_500])
async def test_transport_trouble_is_retryable(rig: Rig, fault: Fault) -> None:
    _, queries = await sent(rig, "+8613800138000")
    rig.upstream.fault = fault
    with pytest.raises(CarrierError) as caught:
        await rig.carrier.pull_statuses(queries)
    assert caught.value.kind is FailureKind.RETRYABLE


async def test_a_number_whose_call_failed_waits_and_no_number_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    (answered, failing), queries = await sent(rig, *mainland(2, prefix="+86139"))
    rig.upstream.default_report = Report(delivered=True)
    rig.upstream.number_codes = {failing.e164: "InternalError"}
    with caplog.at_level(logging.DEBUG):
        receipts = await rig.carrier.pull_statuses(queries)
    assert [r.e164 for r in receipts] == [answered.e164]
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("plugins", "gateway.carriers"))
    )
    assert "1 of 2" in ours and "InternalError" in ours
    assert "1390000000" not in ours


async def test_records_too_old_to_ask_are_left_out_without_a_call(rig: Rig, case: CarrierCase) -> None:
    _, [query] = await sent(rig, "+8613800138000")
    rig.upstream.default_report = Report(delivered=True)
    days = {"tencent": 7, "aliyun": 31}[case.name]
    old = StatusQuery(query.carrier_id, query.e164, query.sent_ms - days * DAY * 1000)
    assert await rig.carrier.pull_statuses([old]) == []
    assert pulls(rig) == []


# -- the fakes refuse what the carriers refuse -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"Limit": 101}, "InvalidParameterValue.LimitVerifyFail"),
        ({"Offset": 100}, "InvalidParameterValue.OffsetVerifyFail"),
        ({"BeginTime": -8 * DAY}, "InvalidParameterValue.BeginTimeVerifyFail"),
        ({"EndTime": -DAY}, "InvalidParameterValue.InvalidStartTime"),
        ({"SmsSdkAppid": "1400006666"}, "UnknownParameter"),  # the 2019-07-11 spelling
        ({"PhoneNumber": None}, "MissingParameter"),
    ],
)
async def test_the_tencent_fake_checks_the_pull(
    aiohttp_server: Any, session: aiohttp.ClientSession, change: dict[str, Any], code: str
) -> None:
    rig = await Rig.start(TENCENT, aiohttp_server, session)
    now = int(time.time())
    payload = {"BeginTime": now - 60, "EndTime": now, "Offset": 0, "Limit": 100}
    payload |= {"PhoneNumber": "+8613800138000", "SmsSdkAppId": TENCENT.options["sdk_app_id"]}
    for name, value in change.items():
        relative = name.endswith("Time") and isinstance(value, int)
        payload[name] = now + value if relative else value
    payload = {name: value for name, value in payload.items() if value is not None}
    with pytest.raises(CarrierError) as caught:
        await rig.carrier._call(PULL_ACTION, payload)
    assert (caught.value.code, caught.value.kind) == (code, FailureKind.PERMANENT)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"PageSize": "51"}, "isv.INVALID_PARAMETERS"),
        ({"PageSize": "0"}, "isv.INVALID_PARAMETERS"),
        ({"CurrentPage": "0"}, "isv.INVALID_PARAMETERS"),
        ({"SendDate": "20000101"}, "isv.INVALID_PARAMETERS"),
        ({"SendDate": None}, "MissingSendDate"),
        ({"PhoneNumber": "12"}, "isv.MOBILE_NUMBER_ILLEGAL"),
    ],
)
async def test_the_aliyun_fake_checks_the_query(
    aiohttp_server: Any, session: aiohttp.ClientSession, change: dict[str, Any], code: str
) -> None:
    rig = await Rig.start(ALIYUN, aiohttp_server, session)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    params = {"PhoneNumber": "13800138000", "SendDate": today, "PageSize": "50", "CurrentPage": "1"}
    params = {name: value for name, value in (params | change).items() if value is not None}
    with pytest.raises(CarrierError) as caught:
        await rig.carrier._query_details(params)
    assert caught.value.code == code


# -- Tencent: one number per call, ranges halved while full ------------------------------------------


async def test_tencent_asks_once_per_number_from_its_earliest_record(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    rig = await Rig.start(TENCENT, aiohttp_server, session)
    rig.carrier.clock = lambda: 1_800_000_000.0
    rig.upstream.clock = rig.carrier.clock
    _, early = await sent(rig, "+8613800138000", "+85261234567")
    _, later = await sent(rig, "+8613800138000")
    rig.upstream.default_report = Report(delivered=True)
    queries = [
        StatusQuery(q.carrier_id, q.e164, 1_800_000_000_000 - offset)
        for q, offset in zip([*early, *later], [90_000, 5_000, 1_000], strict=True)
    ]
    assert len(await rig.carrier.pull_statuses(queries)) == 3
    asked = sorted(pulls(rig), key=lambda payload: payload["PhoneNumber"])
    app = TENCENT.options["sdk_app_id"]
    assert asked == [
        {"BeginTime": 1_799_999_995 - 60, "EndTime": 1_800_000_000, "Offset": 0, "Limit": 100,
         "PhoneNumber": "+85261234567", "SmsSdkAppId": app},
        {"BeginTime": 1_799_999_910 - 60, "EndTime": 1_800_000_000, "Offset": 0, "Limit": 100,
         "PhoneNumber": "+8613800138000", "SmsSdkAppId": app},
    ]  # fmt: skip


async def test_tencent_halves_a_full_range_since_offset_is_fixed_at_zero(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    """From the earliest of the 100 records asked about to now, the number has 127 reports (the
    minute before included): one answer of 100 cannot hold them."""
    rig = await Rig.start(TENCENT, aiohttp_server, session)
    now = [1_800_000_000.0]
    rig.carrier.clock = lambda: now[0]
    rig.upstream.clock = rig.carrier.clock
    queries = []
    for _ in range(150):  # a message every 30 s, each written as the core writes it
        now[0] += 30
        queries += (await sent(rig, "+8613800138000", written=int(now[0] * 1000)))[1]
    rig.upstream.default_report = Report(delivered=True)
    asked = queries[25:125]
    receipts = await rig.carrier.pull_statuses(asked)
    assert sorted(r.carrier_id for r in receipts) == sorted(q.carrier_id for q in asked)
    requests = pulls(rig)
    assert len(requests) > 1
    assert all(r["Limit"] <= 100 and r["Offset"] == 0 for r in requests)
    assert all(r["BeginTime"] >= now[0] - 7 * DAY for r in requests)


# -- Aliyun: one message per call, by its BizId and China date ---------------------------------------


async def test_aliyun_asks_for_each_message_by_number_bizid_and_date(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    rig = await Rig.start(ALIYUN, aiohttp_server, session)
    outcomes, queries = await sent(rig, "+8613800138000", "+85261234567")
    rig.upstream.default_report = Report(delivered=True)
    assert len(await rig.carrier.pull_statuses(queries)) == 2
    date = datetime.fromtimestamp(queries[0].sent_ms / 1000, ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    biz_id = str(outcomes[0].carrier_id)
    page = {"PageSize": "50", "CurrentPage": "1"}
    assert sorted(pulls(rig), key=lambda q: q["PhoneNumber"]) == [
        {"PhoneNumber": "13800138000", "BizId": biz_id, "SendDate": date, **page},
        {"PhoneNumber": "85261234567", "BizId": biz_id, "SendDate": date, **page},
    ]


async def test_aliyun_asks_the_next_date_for_a_record_written_before_midnight(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    rig = await Rig.start(ALIYUN, aiohttp_server, session)
    midnight = datetime(2026, 3, 1, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    rig.carrier.clock = lambda: midnight + 10
    rig.upstream.clock = rig.carrier.clock  # Aliyun took the message at 00:00:10 ...
    outcomes, _ = await sent(rig, "+8613800138000")
    rig.upstream.default_report = Report(delivered=True)
    written = StatusQuery(str(outcomes[0].carrier_id), "+8613800138000", int((midnight - 10) * 1000))
    [receipt] = await rig.carrier.pull_statuses([written])  # ... the record was written at 23:59:50
    assert (receipt.carrier_id, receipt.delivered) == (written.carrier_id, True)
    assert [q["SendDate"] for q in pulls(rig)] == ["20260228", "20260301"]


async def test_aliyun_pages_through_a_bizid_holding_more_than_a_page(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    """A call that listed the number 51 times holds 51 details under its BizId."""
    rig = await Rig.start(ALIYUN, aiohttp_server, session)
    _, queries = await sent(rig, *["+8613800138000"] * 51)
    rig.upstream.default_report = Report(delivered=True)
    receipts = await rig.carrier.pull_statuses(queries[:50])
    assert len(receipts) == 50  # one per record asked about, never more
    assert [(q["PageSize"], q["CurrentPage"]) for q in pulls(rig)] == [("50", "1"), ("50", "2")]


# -- batches and concurrency ---------------------------------------------------------------------------


async def test_a_full_pull_batch_keeps_to_the_limits_a_few_calls_at_a_time(
    rig: Rig, case: CarrierCase
) -> None:
    batch_size, page, bound = {"tencent": (100, "Limit", 5), "aliyun": (50, "PageSize", 10)}[case.name]
    assert rig.carrier.pull_batch == batch_size
    outcomes, queries = await sent(rig, *mainland(batch_size))
    rig.upstream.default_report = Report(delivered=True)
    rig.upstream.fault, rig.upstream.delay = Fault.SLOW, 0.02  # answers overlap, to count them
    rig.upstream.peak = 0
    receipts = await rig.carrier.pull_statuses(queries)
    assert summary(receipts) == summary(
        [Receipt(str(o.carrier_id), o.e164, True, DELIVERED[case.name]) for o in outcomes]
    )
    requests = pulls(rig)
    assert len(requests) == batch_size and {r["PhoneNumber"] for r in requests} == {
        q.e164 if case.name == "tencent" else q.e164[3:] for q in queries
    }
    assert all(int(r[page]) <= batch_size for r in requests)
    assert 1 < rig.upstream.peak <= bound


async def test_an_unexpected_error_is_raised_even_when_other_calls_worked() -> None:
    async def answered() -> list[Receipt]:
        return [Receipt("2433:1", "+8613800138000", True, "DELIVRD")]

    async def broken() -> list[Receipt]:
        raise ValueError("a bug, not the carrier")

    with pytest.raises(ValueError, match="a bug"):
        await gather_answers([answered, broken], 2, "tencent", PULL_ACTION)


# -- reading an answer without the carrier's code ---------------------------------------------------


@pytest.mark.parametrize(("delivered", "code"), [(True, "DELIVRD"), (False, "FAIL")])
def test_a_tencent_report_without_a_description_takes_the_pushed_default(delivered: bool, code: str) -> None:
    query = StatusQuery("2433:1", "+8613800138000", now_ms())
    status = {"SerialNo": "2433:1", "ReportStatus": "SUCCESS" if delivered else "FAIL", "Description": ""}
    receipt = tencent_status._receipt(status, query)
    assert receipt == Receipt("2433:1", "+8613800138000", delivered, code)
    assert tencent_status._receipt({**status, "ReportStatus": "PENDING"}, query) is None


@pytest.mark.parametrize(("send_status", "code"), [(3, "DELIVERED"), ("2", "FAIL"), (1, None), ("x", None)])
def test_an_aliyun_detail_without_an_errcode_takes_the_pushed_default(
    send_status: Any, code: str | None
) -> None:
    query = StatusQuery("9^0", "+8613800138000", now_ms())
    receipt = aliyun_status._receipt({"SendStatus": send_status, "ErrCode": ""}, query)
    assert receipt == (None if code is None else Receipt("9^0", "+8613800138000", code == "DELIVERED", code))
