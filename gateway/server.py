"""Running the gateway: one process, or a master with N worker processes sharing the port.

With ``server.workers > 1`` every worker is a full gateway listening on the same port
(SO_REUSEPORT, the kernel spreads connections). State they must share lives in Redis (the config
refuses the in-process limiter with several workers); metrics are kept by prometheus-client in
multiprocess mode, in a directory the master empties on start, so one scrape of any worker reports
the whole set. The master forwards SIGTERM/SIGINT, waits for the workers to drain, and exits non-zero
if a worker died on its own (a supervisor should then restart the whole set).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from aiohttp import web

from gateway.config import GatewayConfig, load_config, with_overrides

__all__ = ["METRICS_DIR_ENV", "serve"]

log = logging.getLogger("smsedge.server")
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHUTDOWN_TIMEOUT = 30.0


def run_worker(config: GatewayConfig, *, reuse_port: bool = False) -> None:
    from gateway.app import create_app
    from gateway.logs import setup_logging

    setup_logging(config.logging)
    log.info("worker %d listening on http://%s:%d", os.getpid(), config.server.host, config.server.port)
    web.run_app(
        create_app(config), host=config.server.host, port=config.server.port,
        reuse_port=reuse_port, access_log=None, print=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
    )


def _worker_main(config_path: str | None, overrides: dict[str, object]) -> None:
    """A worker re-reads the config itself: nothing but a path crosses the process boundary."""
    run_worker(with_overrides(load_config(config_path), **overrides), reuse_port=True)


def metrics_directory(port: int) -> Path:
    """Where the workers' metric files live: ``$PROMETHEUS_MULTIPROC_DIR``, else one per port."""
    configured = os.environ.get(METRICS_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"sms-edge-metrics-{port}"


def _fresh_metrics_directory(port: int) -> Path:
    directory = metrics_directory(port)
    shutil.rmtree(directory, ignore_errors=True)  # last run's counters must not add to this one's
    directory.mkdir(parents=True)
    os.environ[METRICS_DIR_ENV] = str(directory)
    return directory


def serve(config: GatewayConfig, config_path: str | None, overrides: dict[str, object]) -> int:
    if config.server.workers == 1:
        if METRICS_DIR_ENV in os.environ:  # multiprocess mode asked for by the environment
            _fresh_metrics_directory(config.server.port)
        run_worker(config)
        return 0
    from gateway.logs import setup_logging

    setup_logging(config.logging)
    directory = _fresh_metrics_directory(config.server.port)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker_main, args=(config_path, overrides), name=f"worker-{n}")
        for n in range(config.server.workers)
    ]
    for worker in workers:
        worker.start()
    log.info("started %d workers on port %d (metrics in %s)", len(workers), config.server.port, directory)
    return _supervise(workers)


def _supervise(workers: list[multiprocessing.Process]) -> int:
    from prometheus_client import multiprocess

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while any(worker.is_alive() for worker in workers):
        for worker in workers:
            if worker.exitcode is not None and worker.exitcode != 0 and not stopping:
                log.error("%s (pid %d) exited with %d: stopping all workers",
                          worker.name, worker.pid, worker.exitcode)
                failed = True
                stop(signal.SIGTERM, None)
        time.sleep(0.2)
    for worker in workers:
        multiprocess.mark_process_dead(worker.pid)
    # A worker still starting when told to stop dies of the signal itself: nothing was in flight.
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    return 1 if failed or any(worker.exitcode not in clean for worker in workers) else 0
