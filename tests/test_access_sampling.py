"""``logging.access_sample``: a busy edge may keep only a share of its successful access lines.

A 2xx/3xx line is written with the configured probability; a refusal or an error (4xx, 5xx, 429,
499) always is, and the metrics count every request whatever the log keeps. At 1.0 (the default)
the pipeline writes the line exactly as without the option.
"""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.config.loader import parse_config
from gateway.config.reader import ConfigError
from gateway.keys import ROUTE_TEMPLATE
from gateway.middlewares.request_context import access_line, sampled_access_line
from tests.conftest import DEMO_HEADERS, merge

SEND = "/api/sms/send"


def _access_statuses(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [
        record.smsedge_masked_fields["status"] for record in caplog.records if record.name == "smsedge.access"
    ]


async def _traffic(client) -> dict[int, int]:
    """Successes and every kind of refusal and error; how many of each status were answered."""
    answered: dict[int, int] = {}

    def count(status: int) -> None:
        answered[status] = answered.get(status, 0) + 1

    for _ in range(5):
        count((await client.get("/healthz")).status)
    body = {"phone": "13800138000", "template_id": "123456"}
    count((await client.post(SEND, json=body, headers=DEMO_HEADERS)).status)
    count((await client.post(SEND, json=body, headers=DEMO_HEADERS)).status)  # the number's window
    count(
        (
            await client.post(
                SEND,
                json={"phone": "13900139000", "template_id": "123456", "provider": "refuser"},
                headers=DEMO_HEADERS,
            )
        ).status
    )
    count((await client.post(SEND, json={"phone": "x"}, headers=DEMO_HEADERS)).status)
    count((await client.get("/api/account/info")).status)
    count((await client.get("/no/such/page")).status)
    return answered


@pytest.mark.parametrize("sample", [0.0, 1.0])
async def test_successes_are_sampled_and_refusals_and_errors_always_logged(make_client, caplog, sample):
    caplog.set_level(logging.INFO, logger="smsedge.access")
    client = await make_client(
        logging={"access_sample": sample},
        ratelimit={"phone": [{"limit": 1, "seconds": 60}]},
        providers={"backends": {"refuser": {"plugin": "mock", "price": 0.05, "fail_rate": 1.0}}},
    )
    answered = await _traffic(client)
    assert answered == {200: 6, 429: 1, 502: 1, 400: 1, 401: 1, 404: 1}
    logged = _access_statuses(caplog)
    if sample == 0.0:
        assert sorted(logged) == [400, 401, 404, 429, 502]
    else:
        assert sorted(logged) == sorted(status for status, n in answered.items() for _ in range(n))
    metrics = await (await client.get("/metrics")).text()
    assert 'smsedge_http_requests_total{method="GET",route="/healthz",status="200"} 5.0' in metrics


async def test_a_share_of_successes_is_kept_with_one_draw_each_and_none_for_a_refusal(caplog):
    caplog.set_level(logging.INFO, logger="smsedge.access")
    draws = iter([0.2, 0.7, 0.49, 0.5])
    write = sampled_access_line(0.5, draw=lambda: next(draws))
    for status in (200, 429, 302, 499, 201, 500, 204, 404):
        request = make_mocked_request("GET", "/healthz")
        request[ROUTE_TEMPLATE] = "/healthz"
        write(request, "0" * 32, status, 0.0)
    assert _access_statuses(caplog) == [200, 429, 499, 201, 500, 404]  # 302 drew 0.7, 204 drew 0.5
    assert next(draws, None) is None  # one draw per success, none for a refusal or an error


def test_at_one_the_pipeline_writes_every_line_as_before():
    assert sampled_access_line(1.0) is access_line  # no draw, no extra call on the hot path


def test_the_sample_defaults_to_every_line_and_is_read_from_the_logging_section(config_document):
    assert parse_config(config_document).logging.access_sample == 1.0
    config = parse_config(merge(config_document, {"logging": {"access_sample": "0.05"}}))
    assert config.logging.access_sample == 0.05  # text, as an environment variable gives it


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "logging.access_sample: must be between 0.0 and 1.0"),
        (-0.1, "logging.access_sample: must be between 0.0 and 1.0"),
        ("most", "logging.access_sample: must be a number"),
    ],
)
def test_a_sample_outside_zero_to_one_is_one_config_error(config_document, value, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(merge(config_document, {"logging": {"access_sample": value}}))
    assert str(caught.value) == message
