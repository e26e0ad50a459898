"""``providers.routes`` at send time: the first route that matches a number, and its backend.

A route sends to one backend (``to``), a weighted ``split`` or the ``cheapest`` backend. Splits
and ``cheapest`` leave out what the account may not use and carriers whose circuit is open (until
its cooldown lets a trial call through), so traffic moves off a failing carrier and back once it
answers again; a ``to`` is the operator's pin, left to the failover chain. A split is stable per
number: the share is chosen by a hash of the number's keyed hash, so retries of one number land on
the same carrier (fleet-wide, with ``server.secret_key``) and the shares converge to the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from gateway.config.model import BackendConfig, RouteConfig, RouteMatch
from gateway.phones import Phone
from gateway.sending.circuit import CircuitBreaker
from gateway.store.base import Account

__all__ = ["RouteTable", "allowed", "split_point"]


def allowed(account: Account, backend: str) -> bool:
    """May ``account`` use ``backend``? An empty list allows every one."""
    return not account.providers or backend in account.providers


def split_point(route: str, number_key: str) -> int:
    """Where a number falls on a route's split, stable for the number: 0 .. 2**64-1."""
    digest = hashlib.blake2b(f"{route}\0{number_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _matches(match: RouteMatch, account: Account, phone: Phone, template_id: str) -> bool:
    return (
        (not match.countries or phone.region in match.countries)
        and (not match.prefixes or phone.e164.startswith(match.prefixes))
        and (not match.templates or template_id in match.templates)
        and (not match.accounts or account.name in match.accounts)
    )


class RouteTable:
    def __init__(
        self,
        routes: tuple[RouteConfig, ...],
        backends: Mapping[str, BackendConfig],
        breakers: Mapping[str, CircuitBreaker],
    ) -> None:
        self._routes = routes
        self._backends = backends
        self._breakers = breakers
        # Config order breaks ties between equal prices (sorted() is stable).
        self._by_price = sorted(backends.values(), key=lambda backend: backend.price_milli)

    def __bool__(self) -> bool:
        return bool(self._routes)

    def choose(
        self, account: Account, phone: Phone, number_key: str, template_id: str
    ) -> tuple[str, BackendConfig] | None:
        """(route name, backend) of the first route that matches and has a backend to offer."""
        for route in self._routes:
            if not _matches(route.match, account, phone, template_id):
                continue
            backend = self._target(route, account, phone, number_key)
            if backend is not None:
                return route.name, backend
        return None

    def _target(
        self, route: RouteConfig, account: Account, phone: Phone, number_key: str
    ) -> BackendConfig | None:
        if route.to is not None:
            return self._backends[route.to] if allowed(account, route.to) else None
        if route.split:
            return self._split(route, account, number_key)
        return next(
            (backend for backend in self._by_price
             if (not backend.countries or phone.region in backend.countries)
             and self._usable(account, backend.name)),
            None,
        )

    def _split(self, route: RouteConfig, account: Account, number_key: str) -> BackendConfig | None:
        members = [(name, weight) for name, weight in route.split if self._usable(account, name)]
        if not members:
            return None
        point = split_point(route.name, number_key) % sum(weight for _, weight in members)
        for name, weight in members[:-1]:
            if point < weight:
                return self._backends[name]
            point -= weight
        return self._backends[members[-1][0]]

    def _usable(self, account: Account, name: str) -> bool:
        return allowed(account, name) and self._breakers[name].takes_calls
