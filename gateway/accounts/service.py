"""The account service: every change an operator makes to an account, and its audit entry.

The admin API, the ``accounts`` CLI and the config's listed accounts all go through
:class:`AccountService`, so every change is audited the same way (who, what, before and after, never
a secret) and announced to every process sharing the store, whose caches drop it at once
(``gateway.store.changes``). The change comes first, then its entry.
What an entry holds and what a failure between the two leaves: (docs/accounts.md, "One service").
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Unpack

from gateway.accounts.creation import AccountTerms, create_account, rotate_secret
from gateway.accounts.credentials import hash_secret
from gateway.accounts.names import name_key
from gateway.accounts.rules import Invalid, check_name, check_reason
from gateway.callbacks.urls import check_callback_url, check_prefixes
from gateway.phones import scrub
from gateway.store.audit import AuditEntry
from gateway.store.base import Account, AccountExists, Store

__all__ = ["CLI_ACTOR", "AccountService"]

CLI_ACTOR = "cli"
#: The public field each updatable store field shows as (``Account.public``).
_PUBLIC_FIELD = {
    "verification_status": "verification_status",
    "disabled": "disabled",
    "providers": "providers",
    "rate": "ratelimit",
    "burst": "ratelimit",
    "callback_url": "callback_url",
    "callback_prefixes": "callback_prefixes",
    "daily_limit": "daily_limit",
    "monthly_limit": "monthly_limit",
}
_CREATED_FIELDS = ("balance", "verification_status", "disabled", "providers", "ratelimit")
_LIMITS = ("daily_limit", "monthly_limit")  # in a creation's entry where it sets one


class AccountService:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def create(self, actor: str, name: str, **terms: Unpack[AccountTerms]) -> tuple[Account, str]:
        """The new account and its secret (shown this once; the store keeps a hash). Key and
        secret are new ones but for an account the config lists (``listed``). A name is checked
        and trimmed (``rules.check_name``); one that reads as a taken one is :class:`AccountExists`."""
        name = check_name(name)
        if any(name_key(other.name) == name_key(name) for other in await self.store.list_accounts()):
            raise AccountExists(name)
        account, secret = await create_account(self.store, name, **terms)
        public = account.public()
        created = {f: public[f] for f in _CREATED_FIELDS} | {f: public[f] for f in _LIMITS if public[f]}
        await self._audit(actor, "create", account, after=created)
        return account, secret

    async def top_up(
        self, actor: str, api_key: str, amount_milli: int, reason: str | None = None
    ) -> Account | None:
        """Add more than nothing (an amount read exactly: ``rules.check_amount``), with a reason
        of 1-200 characters when one is given: the one rule of a top-up, for the CLI and the
        admin API alike. Raises :class:`~gateway.accounts.rules.Invalid` before anything is written."""
        if isinstance(amount_milli, bool) or not isinstance(amount_milli, int) or amount_milli <= 0:
            raise Invalid("amount: must be more than 0 yuan", field="amount")
        reason = None if reason is None else check_reason(reason)
        account = await self.store.top_up(api_key, amount_milli)
        if account is not None:
            # From the balance the top-up left: exact even while the account is sending.
            before: dict[str, object] = {"balance": (account.balance_milli - amount_milli) / 1000}
            await self._audit(
                actor, "topup", account, before, {"balance": account.balance_milli / 1000}, reason
            )
        return account

    async def update(self, actor: str, api_key: str, changes: dict[str, object]) -> Account | None:
        """Set the store fields in ``changes`` (``Store.update_account``'s, but the secrets). A
        callback URL must lie inside the prefixes the account will have (``callbacks.urls``)."""
        if not changes or {"secret_hash", "callback_secret"} & set(changes):
            raise ValueError("update changes the public fields; rotate_secret the secret")
        before = await self.account(api_key)
        if before is not None and {"callback_url", "callback_prefixes"} & set(changes):
            changes = {**changes, **_callback_changes(before, changes)}
        after = await self.store.update_account(api_key, **changes) if before else None
        if before is None or after is None:
            return None
        old, new = before.public(), after.public()
        changed = [f for f in sorted({_PUBLIC_FIELD[name] for name in changes}) if old[f] != new[f]]
        action = "update"
        if set(changes) == {"disabled"}:
            action = "disable" if changes["disabled"] else "enable"
        await self._audit(actor, action, after, {f: old[f] for f in changed}, {f: new[f] for f in changed})
        return after

    async def rotate_secret(self, actor: str, api_key: str) -> tuple[Account, str] | None:
        """The account and its new secret (shown this once); the old one stops working at once."""
        rotated = await rotate_secret(self.store, api_key)
        if rotated is not None:
            await self._audit(actor, "rotate-secret", rotated[0])
        return rotated

    async def set_callback_secret(self, actor: str, api_key: str) -> tuple[Account, str] | None:
        """The account and its new callback signing secret (shown this once): its events are
        signed with it from then on."""
        secret = secrets.token_urlsafe(32)
        account = await self.store.update_account(api_key, callback_secret=secret)
        if account is None:
            return None
        await self._audit(actor, "callback-secret", account)
        return account, secret

    async def replay_callbacks(self, actor: str, api_key: str) -> int | None:
        """Make the account's dead callback events pending again, due now; how many (None: no
        such account)."""
        account = await self.account(api_key)
        if account is None:
            return None
        replayed = await self.store.replay_callbacks(account.id, int(self._clock() * 1000))
        await self._audit(actor, "callback-replay", account, after={"replayed": replayed})
        return replayed

    async def follow_config_secret(
        self, actor: str, api_key: str, applied: str | None, secret: str
    ) -> Account | None:
        """Make ``secret``, the config's, the account's, if the config's secret recorded as applied
        is still ``applied`` (``Store.apply_config_secret``); None when another process did."""
        secret_hash = hash_secret(secret)
        account = await self.store.apply_config_secret(api_key, applied, secret_hash, secret_hash)
        if account is not None:
            await self._audit(actor, "rotate-secret", account)
        return account

    async def account(self, api_key: str) -> Account | None:
        """What the account is now, not what this process's cache held up to a second ago."""
        return await getattr(self.store, "inner", self.store).account_by_key(api_key)

    async def _audit(
        self,
        actor: str,
        action: str,
        account: Account,
        before: dict[str, object] | None = None,
        after: dict[str, object] | None = None,
        reason: str | None = None,
    ) -> None:
        # Kept masked: a name or a reason may hold a number (a name made before they were checked).
        await self.store.append_audit(
            AuditEntry(
                int(self._clock() * 1000),
                actor,
                action,
                scrub(account.name),
                account.api_key,
                before or {},
                after or {},
                scrub(reason) if reason is not None else None,
            )
        )


def _callback_changes(account: Account, changes: dict[str, object]) -> dict[str, object]:
    """The callback fields of ``changes``, checked together with what the account keeps: new
    prefixes must still hold its URL, a new URL must lie inside its prefixes."""
    prefixes = account.callback_prefixes
    checked: dict[str, object] = {}
    if "callback_prefixes" in changes:
        prefixes = checked["callback_prefixes"] = check_prefixes(changes["callback_prefixes"])
    url = changes.get("callback_url", account.callback_url)
    if url is not None:
        checked["callback_url"] = check_callback_url(url, prefixes)
    return checked
