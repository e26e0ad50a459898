"""Reloading the config without a restart: ``SIGHUP`` re-reads the file the gateway started with.

Providers, templates, the per-account and per-number rate limits, the listed accounts and the admin
tokens change for new requests; requests in flight finish on the runtime they started with. A change
to anything opened at start is applied for the rest with one warning naming the kept keys, rather
than holding back an urgent carrier or secret change; an invalid file is refused whole.
What reloads and what needs a restart, and why: (docs/deploy-reload.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping

import msgspec
from aiohttp import web
from msgspec.structs import fields, replace

from gateway.accounts.listed import bootstrap_accounts
from gateway.app import build_runtime
from gateway.config.loader import load_config, with_overrides
from gateway.config.model import GatewayConfig
from gateway.config.reader import ConfigError
from gateway.keys import METRICS, RUNTIME, STORE
from gateway.store.base import StoreUnavailable

__all__ = ["applied_config", "reload_config", "reload_on_sighup"]

log = logging.getLogger("smsedge.reload")
_RELOADED_SECTIONS = ("providers", "templates", "accounts", "admin")
_RELOADED_RATELIMIT = ("account", "phone")


def _changed(path: str, running: object, loaded: object) -> list[str]:
    """Key paths whose value differs, down to a section's own fields."""
    if running == loaded:
        return []
    if isinstance(running, msgspec.Struct):
        return [
            name
            for field in fields(running)
            for name in _changed(
                f"{path}.{field.name}", getattr(running, field.name), getattr(loaded, field.name)
            )
        ]
    return [path]


def applied_config(running: GatewayConfig, loaded: GatewayConfig) -> tuple[GatewayConfig, list[str]]:
    """The config to serve (the reloadable parts of ``loaded``) and the restart-only keys it changed."""
    ratelimit = replace(
        running.ratelimit, **{name: getattr(loaded.ratelimit, name) for name in _RELOADED_RATELIMIT}
    )
    applied = replace(
        running, ratelimit=ratelimit, **{name: getattr(loaded, name) for name in _RELOADED_SECTIONS}
    )
    kept = [
        path
        for field in fields(running)
        for path in _changed(field.name, getattr(applied, field.name), getattr(loaded, field.name))
    ]
    return applied, kept


async def reload_config(app: web.Application, path: str | None, overrides: Mapping[str, object]) -> bool:
    """Build a complete new runtime from the file and swap it in; on any error keep the old one."""
    slot, metrics = app[RUNTIME], app[METRICS]
    try:
        loaded = with_overrides(await asyncio.to_thread(load_config, path), **overrides)
        config, kept = applied_config(slot.current.config, loaded)
        runtime = build_runtime(app, config)  # plugins are constructed (and checked) here
    except ConfigError as exc:
        return _refused(app, "; ".join(str(exc).splitlines()))  # the lines check-config prints
    except Exception as exc:
        # A plugin's constructor may raise anything; its message may hold a credential: type only.
        return _refused(app, f"providers.backends: a carrier plugin failed to start ({type(exc).__name__})")
    try:
        await bootstrap_accounts(app[STORE], config.accounts)
    except StoreUnavailable as exc:
        await runtime.close()
        return _refused(app, f"accounts: store unavailable: {exc}")
    slot.swap(runtime)
    metrics.reload_result("ok")
    if kept:
        log.warning(
            "config reloaded in process %d; these need a restart and keep their running values: %s",
            os.getpid(),
            ", ".join(kept),
        )
    else:
        log.info("config reloaded in process %d", os.getpid())
    return True


def _refused(app: web.Application, problem: str) -> bool:
    log.error("config reload refused in process %d, the running config stays: %s", os.getpid(), problem)
    app[METRICS].reload_result("error")
    return False


def reload_on_sighup(app: web.Application, path: str | None, overrides: Mapping[str, object]) -> None:
    """Install (on start) a SIGHUP handler that reloads, one reload at a time, in this process."""
    lock = asyncio.Lock()
    running: set[asyncio.Task[bool]] = set()

    async def serialized() -> bool:
        async with lock:
            return await reload_config(app, path, overrides)

    def on_sighup() -> None:
        task = asyncio.get_running_loop().create_task(serialized())
        running.add(task)
        task.add_done_callback(running.discard)

    async def install(_app: web.Application) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_sighup)
        log.info("process %d reloads its config on SIGHUP", os.getpid())

    async def remove(_app: web.Application) -> None:
        # Draining: a late SIGHUP is ignored (not fatal), and a reload under way ends before cleanup.
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        await asyncio.gather(*running, return_exceptions=True)

    app.on_startup.append(install)
    app.on_shutdown.append(remove)
