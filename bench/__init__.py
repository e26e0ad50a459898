"""``make bench``: the gateway's throughput, latency and memory, measured against bare aiohttp.

Cases (each module runs one): ``throughput`` (wrk, alternating rounds: bare aiohttp, the gateway on
the embedded default, the gateway on Redis), ``batch`` (batch-send of 100 numbers to a fake carrier
with 50 ms latency), ``records`` (GET /api/sms/records over 1,000,000 records), ``rss`` (memory after
20,000 and 200,000 sends) and, on request, ``profile`` (py-spy on the full chain).
Everything runs on loopback, bounded in count and time; see docs/benchmarks.md.
"""
