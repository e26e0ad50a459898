"""Running the gateway: one process, or a master with N worker processes sharing the port.

With ``server.workers > 1`` every worker is a full gateway listening on the same port
(SO_REUSEPORT, the kernel spreads connections). State they must share lives in Redis (the config
refuses the in-process limiter with several workers); metrics are kept by prometheus-client in
multiprocess mode, in a directory whose metric files the master removes on start and on shutdown
(nothing else there is touched), so one scrape of any worker reports the whole set. The master
forwards SIGTERM/SIGINT, waits for the workers to drain, and exits non-zero if a worker died on its
own (a supervisor should then restart the whole set). SIGHUP reloads the config (``gateway.process.reload``):
the master forwards it to every worker, and each worker reloads itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import re
import signal
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

import orjson
from aiohttp import web, web_server
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import multiprocess

from gateway.app import create_app
from gateway.config.loader import load_config, with_overrides
from gateway.config.model import GatewayConfig
from gateway.errors import INVALID_PARAMS, error_body
from gateway.ids import new_hex_id
from gateway.logs import setup_logging
from gateway.middlewares.security_headers import SERVER
from gateway.process.listening import HeaderDeadlineHandler, serve_until_stopped
from gateway.process.pidfile import written_pid_file
from gateway.process.reload import reload_on_sighup
from gateway.process.tls import server_context

try:  # the faster event loop, where it is installed (it is a dependency; asyncio is the fallback)
    import uvloop
except ImportError:  # pragma: no cover - platforms uvloop does not build on
    uvloop = None  # type: ignore[assignment]  # not installed: asyncio's loop (new_event_loop)

__all__ = ["METRICS_DIR_ENV", "EnvelopeRequestHandler", "serve"]

log = logging.getLogger("smsedge.server")
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHUTDOWN_TIMEOUT = 30.0
YOUNG_THRESHOLD = 100_000  # allocations between collections of the young generation (default 700)
# The files prometheus-client's multiprocess mode writes: counter_123.db, gauge_livesum_123.db, ...
_METRIC_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_[0-9]+\.db")
_MALFORMED = "请求参数错误:HTTP 请求格式无效(请求行或请求头过长、过多或含非法字符)"


class EnvelopeRequestHandler(HeaderDeadlineHandler):
    """aiohttp's connection handler, answering its own errors in the API's JSON envelope.

    aiohttp's HTTP parser refuses a malformed request (a header line over 8190 bytes, more than 128
    headers, a NUL or other illegal byte in a header, a broken request line or chunked encoding)
    before any middleware runs, with a plain-text 400 from ``RequestHandler.handle_error``. This
    subclass gives those the envelope every other error has, and logs them as one warning line
    (no traceback, no raw header bytes: they may hold anything a client sent).
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0 or status >= 500:
            return super().handle_error(request, status, exc, message)  # aiohttp's own handling
        reason = type(exc).__name__ if isinstance(exc, HttpProcessingError) else "bad request"
        log.warning("malformed HTTP request from %s refused with %d: %s", request.remote, status, reason)
        request_id = new_hex_id()
        response = web.Response(
            status=status,
            body=orjson.dumps(error_body(INVALID_PARAMS, _MALFORMED, request_id)),
            content_type="application/json",
            charset="utf-8",
            headers={
                "X-Request-ID": request_id,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
                "Server": SERVER,
            },
        )
        response.force_close()
        return response


def run_worker(
    config: GatewayConfig, config_path: str | None, overrides: dict[str, object], *, reuse_port: bool = False
) -> None:
    setup_logging(config.logging)
    # aiohttp offers no public hook for its parser-level error answers: ``web.Server`` builds a
    # ``web_server.RequestHandler`` per connection, so this worker process points that name at the
    # subclass above (tests/test_hostile_input.py fails if an aiohttp upgrade breaks this).
    web_server.RequestHandler = EnvelopeRequestHandler  # type: ignore[attr-defined]  # not exported, only looked up
    log.info(
        "worker %d listening on %s://%s:%d",
        os.getpid(),
        config.server.tls.scheme,
        config.server.host,
        config.server.port,
    )
    app = create_app(config)
    app.on_startup.append(_freeze_startup_objects)
    app.on_shutdown.append(_draining)
    app.on_cleanup.append(_stopped)
    reload_on_sighup(app, config_path, overrides)
    serve_until_stopped(
        app,
        config.server,
        server_context(config.server.tls),
        reuse_port=reuse_port,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        loop=new_event_loop(),
    )


async def _freeze_startup_objects(app: web.Application) -> None:
    """Keep what start-up made (modules, config, carriers, caches) out of every later collection,
    and collect the young generation far less often than Python's default.

    A full collection walks every object there is; with the start-up heap frozen it walks only
    what requests made since (the gc docs' advice for servers). A request makes a few hundred
    containers that its end frees again by reference counting; at the default threshold (700) the
    young generation was collected every other request, for objects that were about to go anyway.
    Only cycles wait longer for it (at most ``YOUNG_THRESHOLD`` allocations' worth).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _draining(app: web.Application) -> None:
    log.info("process %d shutting down: draining requests for up to %g s", os.getpid(), SHUTDOWN_TIMEOUT)


async def _stopped(app: web.Application) -> None:
    log.info("process %d stopped", os.getpid())


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The worker's loop: uvloop's (less CPU per request) when installed, else asyncio's."""
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def _worker_main(config_path: str | None, overrides: dict[str, object]) -> None:
    """A worker re-reads the config itself: nothing but a path crosses the process boundary."""
    config = with_overrides(load_config(config_path), **overrides)
    run_worker(config, config_path, overrides, reuse_port=True)


def metrics_directory(port: int) -> Path:
    """Where the workers' metric files live: ``$PROMETHEUS_MULTIPROC_DIR``, else one per port."""
    configured = os.environ.get(METRICS_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"sms-edge-metrics-{port}"


def _remove_metric_files(directory: Path) -> None:
    """Last run's counters must not add to this one's; anything else there is not ours to delete."""
    for path in directory.glob("*.db"):
        if _METRIC_FILE.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _fresh_metrics_directory(port: int) -> Path:
    directory = metrics_directory(port)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_metric_files(directory)
    os.environ[METRICS_DIR_ENV] = str(directory)
    return directory


def _clean_metrics_directory(directory: Path, *, ours: bool) -> None:
    """On shutdown: the files are stale once the workers are gone; a directory we chose goes too."""
    _remove_metric_files(directory)
    if ours:
        with contextlib.suppress(OSError):  # not empty: someone else keeps files there
            directory.rmdir()


def serve(
    config: GatewayConfig, config_path: str | None, overrides: dict[str, object], welcome: str | None
) -> int:
    """Run the gateway; ``welcome`` (``gateway.process.greeting``) is logged once, from this process. The
    caller has set up logging (``gateway.process.cli``: before its own checks)."""
    # Until a handler is installed, SIGHUP must not kill a starting gateway; the workers inherit this.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if welcome:  # once, from the process a person started
        log.info("%s", welcome)
    with written_pid_file(config.server.port):
        return _serve(config, config_path, overrides)


def _serve(config: GatewayConfig, config_path: str | None, overrides: dict[str, object]) -> int:
    if config.server.workers == 1:
        if METRICS_DIR_ENV in os.environ:  # multiprocess mode asked for by the environment
            _fresh_metrics_directory(config.server.port)
        run_worker(config, config_path, overrides)
        return 0
    ours = METRICS_DIR_ENV not in os.environ
    directory = _fresh_metrics_directory(config.server.port)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker_main, args=(config_path, overrides), name=f"worker-{n}")
        for n in range(config.server.workers)
    ]
    for worker in workers:
        worker.start()
    log.info("started %d workers on port %d (metrics in %s)", len(workers), config.server.port, directory)
    try:
        return _supervise(workers)
    finally:
        _clean_metrics_directory(directory, ours=ours)


def _supervise(workers: Sequence[BaseProcess]) -> int:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                assert worker.pid is not None  # alive: started
                os.kill(worker.pid, signal.SIGTERM)

    def forward(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive():
                assert worker.pid is not None  # alive: started
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, forward)
    failed = False
    while any(worker.is_alive() for worker in workers):
        for worker in workers:
            if worker.exitcode is not None and worker.exitcode != 0 and not stopping:
                log.error(
                    "%s (pid %d) exited with %d: stopping all workers",
                    worker.name,
                    worker.pid,
                    worker.exitcode,
                )
                failed = True
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    for worker in workers:
        multiprocess.mark_process_dead(worker.pid)
    # A worker still starting when told to stop dies of the signal itself: nothing was in flight.
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    return 1 if failed or any(worker.exitcode not in clean for worker in workers) else 0
