"""The admin API's shapes, declared once: the handlers decode into them and the OpenAPI document
(``gateway/api/openapi.py``) publishes their JSON Schema. Limits are the CLI's
(``gateway.accounts.rules``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from gateway.accounts.rules import (
    MAX_BURST,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    MAX_RATE,
    MAX_REASON_LENGTH,
    MIN_RATE,
)
from gateway.api.models import Provider, Record, Verification
from gateway.billing.usage import UsageRow
from gateway.money import MAX_YUAN
from gateway.store.audit import AUDIT_ACTIONS
from gateway.store.callbacks import EVENT_TYPES

__all__ = [
    "AccountView",
    "AccountsData",
    "AdminAccountResponse",
    "AdminAccountsResponse",
    "AdminAuditResponse",
    "AdminCallbackSecretResponse",
    "AdminCallbacksResponse",
    "AdminCreatedResponse",
    "AdminMessageResponse",
    "AdminReplayedResponse",
    "AdminRotatedResponse",
    "AuditData",
    "AuditEntryView",
    "AuditQuery",
    "CallbackEventView",
    "CallbackSecret",
    "CallbacksData",
    "CallbacksQuery",
    "CreateAccountRequest",
    "CreatedAccount",
    "MessageData",
    "NamedAccount",
    "PatchAccountRequest",
    "RateLimit",
    "Replayed",
    "RotatedSecret",
    "TopUpRequest",
]

# Amounts are read exactly (the handlers decode JSON numbers as Decimal) and checked by
# ``gateway.accounts.rules``.
Yuan = Annotated[
    Any,
    Meta(
        description="yuan, at most 3 decimals",
        extra_json_schema={"type": "number", "minimum": 0, "maximum": MAX_YUAN},
    ),
]
Providers = Annotated[
    list[Provider],
    Meta(
        max_length=64,
        extra_json_schema={"uniqueItems": True},
        description="allowed providers; empty: every provider",
    ),
]


_CALLBACK_URL = "where delivery callbacks go (string, or null for none); must start with a callback prefix"
_CALLBACK_PREFIXES = "URL prefixes every callback URL of the account must start with (absolute http/https)"
#: A daily or monthly limit, in messages (docs/quotas.md); null: no cap.
Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="messages; counted in server.timezone")]


class RateLimit(Struct, forbid_unknown_fields=True):
    rate: Annotated[float, Meta(ge=MIN_RATE, le=MAX_RATE, description="tokens per second")]
    burst: Annotated[int, Meta(ge=1, le=MAX_BURST)]


# -- requests ------------------------------------------------------------------------------------


class CreateAccountRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
    balance: Yuan = 0
    verification_status: Verification = "approved"
    ratelimit: RateLimit | None = None  # none: ratelimit.account of the config
    providers: Providers = []


class PatchAccountRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    disabled: bool | UnsetType = UNSET
    verification_status: Verification | UnsetType = UNSET
    ratelimit: RateLimit | UnsetType | None = UNSET  # null: back to ratelimit.account
    providers: Providers | UnsetType = UNSET
    # Checked by ``gateway.callbacks.urls`` (the reason in the 400), not by the decoder.
    callback_url: Annotated[Any, Meta(description=_CALLBACK_URL)] = UNSET
    callback_prefixes: Annotated[Any, Meta(description=_CALLBACK_PREFIXES)] = UNSET
    daily_limit: Limit | UnsetType | None = UNSET  # null: no cap
    monthly_limit: Limit | UnsetType | None = UNSET


class TopUpRequest(Struct, forbid_unknown_fields=True):
    amount: Annotated[
        Any,
        Meta(
            description="yuan, at most 3 decimals",
            extra_json_schema={"type": "number", "exclusiveMinimum": 0, "maximum": MAX_YUAN},
        ),
    ]
    reason: Annotated[str, Meta(min_length=1, max_length=MAX_REASON_LENGTH)]


class CallbacksQuery(Struct):
    """The query string of GET /admin/api/accounts/{api_key}/callbacks (published as its parameters)."""

    state: Literal["dead"]
    page: Annotated[int, Meta(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Meta(ge=1, le=100)] = 20


class AuditQuery(Struct):
    """The query string of GET /admin/api/audit (published as its parameters)."""

    page: Annotated[int, Meta(ge=1, le=1_000_000)] = 1
    per_page: Annotated[int, Meta(ge=1, le=100)] = 20


_DAY = r"^\d{4}-\d{2}-\d{2}$"


class UsageQuery(Struct):
    """The query string of GET /admin/api/usage (published as its parameters)."""

    from_: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="first day, server.timezone")] = (
        field(name="from")
    )
    to: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="last day (included)")]
    account: Annotated[str | None, Meta(description="one account's api_key; none: every account")] = None


# -- answers -------------------------------------------------------------------------------------


class AccountView(Struct):
    name: str
    api_key: str
    balance: float
    verification_status: Verification
    disabled: bool
    providers: list[str]
    ratelimit: RateLimit | None
    total_sent: int
    callback_url: str | None
    callback_prefixes: list[str]
    callback_signed: Annotated[bool, Meta(description="a callback secret is set: its events are signed")]
    daily_limit: Limit | None  # null: no cap
    monthly_limit: Limit | None


class AccountsData(Struct):
    accounts: list[AccountView]


class AdminAccountsResponse(Struct):
    success: bool
    data: AccountsData


class AdminAccountResponse(Struct):
    success: bool
    data: AccountView


class CreatedAccount(AccountView):
    api_secret: Annotated[str, Meta(description="shown this once; only a hash is kept")]


class AdminCreatedResponse(Struct):
    success: bool
    data: CreatedAccount


class RotatedSecret(Struct):
    api_key: str
    api_secret: Annotated[str, Meta(description="shown this once; the old one no longer works")]


class AdminRotatedResponse(Struct):
    success: bool
    data: RotatedSecret


class CallbackSecret(Struct):
    callback_secret: Annotated[
        str, Meta(description="shown this once; events are signed with it from now on")
    ]


class AdminCallbackSecretResponse(Struct):
    success: bool
    data: CallbackSecret


class NamedAccount(Struct):
    name: str
    api_key: str


class MessageData(Struct):
    account: NamedAccount
    record: Record


class AdminMessageResponse(Struct):
    success: bool
    data: MessageData


class CallbackEventView(Struct):
    event_id: str
    message_id: str
    sequence: int
    type: Annotated[str, Meta(extra_json_schema={"enum": list(EVENT_TYPES)})]
    url: str
    attempts: int
    created_at: Annotated[str, Meta(description="ISO 8601 with the offset of server.timezone")]
    last_error: str | None


class CallbacksData(Struct):
    events: list[CallbackEventView]
    total: int
    page: int
    per_page: int


class AdminCallbacksResponse(Struct):
    success: bool
    data: CallbacksData


class Replayed(Struct):
    replayed: Annotated[int, Meta(description="dead events made pending again, due now")]


class AdminReplayedResponse(Struct):
    success: bool
    data: Replayed


class AuditEntryView(Struct):
    id: int
    time: Annotated[str, Meta(description="ISO 8601 with the offset of server.timezone")]
    actor: Annotated[str, Meta(description="the admin token's name, cli, or config")]
    action: Annotated[str, Meta(extra_json_schema={"enum": list(AUDIT_ACTIONS)})]
    account: NamedAccount
    before: Annotated[dict[str, Any], Meta(description="the changed fields as they were")]
    after: Annotated[dict[str, Any], Meta(description="the changed fields as they are now")]
    reason: str | None


class AuditData(Struct):
    entries: list[AuditEntryView]
    total: int
    page: int
    per_page: int


class AdminAuditResponse(Struct):
    success: bool
    data: AuditData


class UsageData(Struct):
    rows: Annotated[
        list[UsageRow], Meta(description="per day, account and carrier; money in yuan, as records show it")
    ]


class AdminUsageResponse(Struct):
    success: bool
    data: UsageData
