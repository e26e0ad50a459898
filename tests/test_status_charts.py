"""The /status charts as served: requests and carrier calls counted in this process's timeline,
three labelled inline SVGs, and what the page says about workers."""

from __future__ import annotations

import asyncio
import os
import re
import time

from gateway.keys import STATUS
from tests.conftest import DEMO_HEADERS, SEND_BODY


async def test_requests_errors_and_carrier_calls_reach_the_charts(client):
    while time.time() % 60 > 50:  # the timeline buckets by wall-clock minute: start well inside one
        await asyncio.sleep(0.5)
    for _ in range(3):
        assert (await client.post("/api/sms/send", headers=DEMO_HEADERS, json=SEND_BODY)).status == 200
    assert (await client.post("/api/sms/send", json=SEND_BODY)).status == 401
    now = client.app[STATUS].timeline.minutes()[-1]
    assert (now.requests, now.errors, now.carrier_calls) == (4, 0, 3)
    html = await (await client.get("/status")).text()
    svgs = re.findall(r'<svg [^>]*role="img" aria-labelledby="chart-(\w+)-title chart-\1-desc"', html)
    assert svgs == ["requests", "errors", "latency"]
    requests_chart = r'<figure class="chart" id="chart-requests">.*?<span class="latest">4 次</span>'
    assert re.search(requests_chart, html, re.S)
    assert f'本进程 (PID <span id="pid">{os.getpid()}</span>)' in html and "worker" not in html


async def test_with_several_workers_the_page_says_each_shows_its_own(make_client, redis_server):
    client = await make_client(
        server={"workers": 2, "secret_key": "status-charts-test-secret-key-0123456789"},
        redis={"url": redis_server.url},
        ratelimit={"backend": "redis"},
    )
    html = await (await client.get("/status")).text()
    assert "共 2 个 worker 进程,每个进程只统计自己处理的请求" in html
