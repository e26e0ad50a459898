"""Choosing where a send goes: the backend the caller names (or the default), then the failover ones.

Only the ``providers`` and ``templates`` slices of the config matter here; the answer is checked
against what the account may use before anything is charged or sent.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config.model import BackendConfig, ProvidersConfig, TemplateConfig
from gateway.errors import ApiError, invalid
from gateway.sending.model import SendInput, template_of
from gateway.store.base import Account

__all__ = ["Routing"]


class Routing:
    def __init__(self, providers: ProvidersConfig, templates: Mapping[str, TemplateConfig]) -> None:
        self._providers = providers
        self._templates = templates

    def backend_for(self, account: Account, requested: str | None) -> BackendConfig:
        """The backend a request goes to: the one it names, else the configured default."""
        name = requested or self._providers.default
        backend = self._providers.backends.get(name)
        if backend is None:
            raise invalid(f"未知的服务商 {name!r}")
        if account.providers and name not in account.providers:
            raise ApiError(403, "PROVIDER_FORBIDDEN", f"权限不足:账户不能使用服务商 {name}")
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
            backends[name] for name in self._providers.failover
            if name != first.name and (not account.providers or name in account.providers)
        ]
        return [first, *rest]
