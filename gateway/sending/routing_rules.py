"""``providers.routes`` at send time: the first routing rule that matches a number, and its backend.

A rule sends to one backend (``to``), a weighted ``split`` or the ``cheapest`` backend. Splits
and ``cheapest`` leave out what the account may not use and carriers whose circuit is open (until
its cooldown lets a trial call through), so traffic moves off a failing carrier and back once it
answers again; a ``to`` is the operator's pin, left to the failover chain. A split is stable per
number: the share is chosen by a hash of the number's keyed hash, so retries of one number land on
the same carrier (fleet-wide, with ``server.secret_key``) and the shares converge to the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from gateway.config.model import BackendConfig, RoutingMatch, RoutingRule
from gateway.phones import Phone
from gateway.sending.circuit import CircuitBreaker
from gateway.store.base import Account

__all__ = ["RoutingRules", "allowed", "split_point"]


def allowed(account: Account, backend: str) -> bool:
    """May ``account`` use ``backend``? An empty list allows every one."""
    return not account.providers or backend in account.providers


def split_point(rule: str, phone_hash: str) -> int:
    """Where a number falls on a rule's split, stable for the number: 0 .. 2**64-1."""
    digest = hashlib.blake2b(f"{rule}\0{phone_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _matches(match: RoutingMatch, account: Account, phone: Phone, template_id: str) -> bool:
    return (
        (not match.countries or phone.region in match.countries)
        and (not match.prefixes or phone.e164.startswith(match.prefixes))
        and (not match.templates or template_id in match.templates)
        and (not match.accounts or account.name in match.accounts)
    )


class RoutingRules:
    def __init__(
        self,
        rules: tuple[RoutingRule, ...],
        backends: Mapping[str, BackendConfig],
        breakers: Mapping[str, CircuitBreaker],
    ) -> None:
        self._rules = rules
        self._backends = backends
        self._breakers = breakers
        # Config order breaks ties between equal prices (sorted() is stable).
        self._by_price = sorted(backends.values(), key=lambda backend: backend.price_milli)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def choose(
        self, account: Account, phone: Phone, phone_hash: str, template_id: str
    ) -> tuple[str, BackendConfig] | None:
        """(rule name, backend) of the first rule that matches and has a backend to offer."""
        for rule in self._rules:
            if not _matches(rule.match, account, phone, template_id):
                continue
            backend = self._target(rule, account, phone, phone_hash)
            if backend is not None:
                return rule.name, backend
        return None

    def _target(
        self, rule: RoutingRule, account: Account, phone: Phone, phone_hash: str
    ) -> BackendConfig | None:
        if rule.to is not None:
            return self._backends[rule.to] if allowed(account, rule.to) else None
        if rule.split:
            return self._split(rule, account, phone_hash)
        return next(
            (
                backend
                for backend in self._by_price
                if (not backend.countries or phone.region in backend.countries)
                and self._usable(account, backend.name)
            ),
            None,
        )

    def _split(self, rule: RoutingRule, account: Account, phone_hash: str) -> BackendConfig | None:
        members = [(name, weight) for name, weight in rule.split if self._usable(account, name)]
        if not members:
            return None
        point = split_point(rule.name, phone_hash) % sum(weight for _, weight in members)
        for name, weight in members[:-1]:
            if point < weight:
                return self._backends[name]
            point -= weight
        return self._backends[members[-1][0]]

    def _usable(self, account: Account, name: str) -> bool:
        return allowed(account, name) and self._breakers[name].takes_calls
