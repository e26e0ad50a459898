"""Choosing where each number goes: the caller's provider, else the first matching routing rule
(``routing_rules``), else the default; after it, the failover backends.

An account's allowed providers bind every choice: a caller naming another is refused; a rule
whose target the account may not use is passed over (a split or ``cheapest`` keeps the members it
may use). Only the ``providers`` and ``templates`` slices of the config matter here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.config.model import BackendConfig, ProvidersConfig, TemplateConfig
from gateway.errors import PROVIDER_FORBIDDEN, ApiError, invalid
from gateway.phones import Phone
from gateway.sending.circuit import CircuitBreaker
from gateway.sending.model import SendInput, template_of
from gateway.sending.routing_rules import RoutingRules, allowed
from gateway.store.base import Account

__all__ = ["DEFAULT_RULE", "REQUESTED_RULE", "Group", "Routed", "Routing"]

#: The ``route`` label of a number sent where the caller named, or to the default (no rule matched).
REQUESTED_RULE, DEFAULT_RULE = "requested", "default"


class Routed(NamedTuple):
    phone: Phone
    phone_hash: str  # the number's keyed hash
    rule: str  # the name of the routing rule that chose its backend (the ``route`` label)


@dataclass(slots=True)
class Group:
    """The numbers of one request that go to one backend first (in as few calls as it allows)."""

    backend: BackendConfig
    numbers: list[Routed] = field(default_factory=list)


class Routing:
    def __init__(
        self,
        providers: ProvidersConfig,
        templates: Mapping[str, TemplateConfig],
        breakers: Mapping[str, CircuitBreaker],
    ) -> None:
        self._providers = providers
        self._templates = templates
        self._rules = RoutingRules(providers.routes, providers.backends, breakers)

    def plan(self, account: Account, request: SendInput, phone_hashes: list[str]) -> list[Group]:
        """The request's numbers grouped by the backend each goes to first."""
        if request.provider is not None or not self._rules:  # no rules: as without routing
            rule = DEFAULT_RULE if request.provider is None else REQUESTED_RULE
            backend = self._named(account, request.provider or self._providers.default)
            numbers = [
                Routed(phone, phone_hash, rule)
                for phone, phone_hash in zip(request.phones, phone_hashes, strict=True)
            ]
            return [Group(backend, numbers)]
        groups: dict[str, Group] = {}
        for phone, phone_hash in zip(request.phones, phone_hashes, strict=True):
            choice = self._rules.choose(account, phone, phone_hash, request.template_id)
            if choice is None:
                choice = DEFAULT_RULE, self._named(account, self._providers.default)
            rule, backend = choice
            group = groups.get(backend.name)
            if group is None:
                group = groups[backend.name] = Group(backend)
            group.numbers.append(Routed(phone, phone_hash, rule))
        return list(groups.values())

    def _named(self, account: Account, name: str) -> BackendConfig:
        backend = self._providers.backends.get(name)
        if backend is None:
            raise invalid(f"未知的服务商 {name!r}")
        if not allowed(account, name):
            raise ApiError(403, PROVIDER_FORBIDDEN, f"权限不足:账户不能使用服务商 {name}")
        return backend

    def check_template(self, request: SendInput) -> None:
        """A template's declared parameters are all required: carriers fill them by position."""
        declared = template_of(self._templates, request.template_id).params
        missing = [name for name in declared if name not in request.params]
        if missing:
            raise invalid(f"模板 {request.template_id} 缺少参数 {', '.join(missing)}")

    def chain(self, account: Account, first: BackendConfig) -> list[BackendConfig]:
        """The chosen backend, then the failover ones this account may use."""
        backends = self._providers.backends
        rest = [
            backends[name]
            for name in self._providers.failover
            if name != first.name and allowed(account, name)
        ]
        return [first, *rest]
