"""The shapes of the API, declared once: what a request may hold and what an answer holds.

The handlers decode bodies into these structs and build their answers from them, and
``gateway/api/openapi.py`` publishes the JSON Schema msgspec generates from them, so the document
and the server cannot drift apart. The limits are the API contract's (``docs/api.md``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.callbacks.urls import MAX_URL_LENGTH
from gateway.phones import PHONE_PATTERN
from gateway.store.records import STATUSES

__all__ = [
    "MAX_BATCH",
    "MAX_PAGE",
    "MAX_PARAMS",
    "MAX_PARAM_LENGTH",
    "MAX_PARAM_NAME_LENGTH",
    "MAX_PER_PAGE",
    "PROVIDER_PATTERN",
    "TEMPLATE_ID_PATTERN",
    "TIME_PATTERN",
    "AccountData",
    "AccountResponse",
    "BatchData",
    "BatchRequest",
    "BatchResponse",
    "BatchResult",
    "Error",
    "Record",
    "RecordsPage",
    "RecordsQuery",
    "RecordsResponse",
    "SendData",
    "SendRequest",
    "SendResponse",
]

MAX_BATCH = 100
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000
MAX_PARAMS = 20
MAX_PARAM_LENGTH = 256
MAX_PARAM_NAME_LENGTH = 64
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
PROVIDER_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"

# Patterns are published here and checked in ``validation.py``, whole-string (``fullmatch``):
# msgspec's own pattern check is a search, where ``$`` also matches before a final newline, and
# a phone is only as valid as the numbering plan says.
PhoneText = Annotated[str, Meta(extra_json_schema={"pattern": PHONE_PATTERN, "example": "13800138000"})]
MaskedPhone = Annotated[str, Meta(extra_json_schema={"example": "138****8000"})]
TemplateId = Annotated[str, Meta(extra_json_schema={"pattern": TEMPLATE_ID_PATTERN})]
ParamName = Annotated[str, Meta(min_length=1, max_length=MAX_PARAM_NAME_LENGTH)]
# A JSON integer stays an integer (5 reaches the carrier as "5", not "5.0"). A longer one than 64 bits
# is decoded the plain way (``validation.py``), which keeps what JSON parsers keep of it.
Integer = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
ParamValue = Annotated[str, Meta(max_length=MAX_PARAM_LENGTH)] | Integer | float
Params = Annotated[dict[ParamName, ParamValue], Meta(max_length=MAX_PARAMS)]
Provider = Annotated[str, Meta(extra_json_schema={"pattern": PROVIDER_PATTERN})]  # + names: openapi.py
LocalTime = Annotated[str, Meta(pattern=TIME_PATTERN)]  # YYYY-MM-DD HH:mm:ss in server.timezone
# Literal of a tuple is of its values to Python and msgspec; mypy wants the values spelled out
Status = Annotated[Literal[STATUSES], Meta(extra_json_schema={"type": "string"})]  # type: ignore[valid-type]  # STATUSES' values
CallbackUrl = Annotated[
    str,
    Meta(
        max_length=MAX_URL_LENGTH,
        description="where this send's status changes are posted; must start with one of the"
        " account's callback_prefixes",
    ),
]
Verification = Annotated[
    Literal["approved", "pending", "rejected"], Meta(extra_json_schema={"type": "string"})
]


# -- requests ------------------------------------------------------------------------------------


class _Message(Struct, forbid_unknown_fields=True, kw_only=True):
    template_id: TemplateId
    params: Params = {}
    provider: Provider | UnsetType = UNSET  # absent: the configured default
    callback_url: CallbackUrl | UnsetType = UNSET  # absent: the account's (checked by the handler)


class SendRequest(_Message, kw_only=True):
    phone: PhoneText


class BatchRequest(_Message, kw_only=True):
    phones: Annotated[list[PhoneText], Meta(min_length=1, max_length=MAX_BATCH)]


class RecordsQuery(Struct):
    """The query string of GET /api/sms/records (published as its parameters)."""

    page: Annotated[int, Meta(ge=1, le=MAX_PAGE)] = 1
    per_page: Annotated[int, Meta(ge=1, le=MAX_PER_PAGE)] = 10
    status: Status | UnsetType = UNSET
    start_time: LocalTime | UnsetType = UNSET
    end_time: LocalTime | UnsetType = UNSET


# -- answers -------------------------------------------------------------------------------------


class Error(Struct):
    success: Annotated[bool, Meta(extra_json_schema={"enum": [False]})]
    message: str
    code: str
    request_id: str


class SendData(Struct):
    message_id: str
    phone: MaskedPhone
    provider: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


class SendResponse(Struct):
    success: bool
    message: str
    data: SendData


class BatchResult(Struct):
    phone: MaskedPhone
    success: bool
    provider: str  # the carrier that took the number (or would have: routes choose per number)
    message: str | UnsetType = UNSET  # why it failed
    message_id: str | UnsetType = UNSET  # a refused number has one too once a record was written


class BatchData(Struct):
    total: int
    success_count: int
    failed_count: int
    results: list[BatchResult]


class BatchResponse(Struct):
    success: bool
    message: str
    data: BatchData


class Record(Struct):
    id: Annotated[int, Meta(ge=1, description="numbered per account: 1, 2, 3 … for each account")]
    message_id: str
    phone: MaskedPhone
    template_id: str
    provider: str
    status: Status
    created_at: LocalTime
    updated_at: LocalTime
    price: Annotated[
        float,
        Meta(
            ge=0,
            description="yuan charged: segments × the carrier's price (at most 3 decimals); 0 once refunded",
        ),
    ]
    segments: Annotated[
        int, Meta(ge=1, description="what it is billed as: the carrier's own count where it gave one")
    ]
    no_receipt: Annotated[
        bool,
        Meta(description="true once the gateway stopped waiting for its receipt (receipts.give_up_after)"),
    ] = False
    error: str | UnsetType | None = UNSET  # failed records only


class RecordsPage(Struct):
    records: list[Record]
    total: int
    page: int
    per_page: int


class RecordsResponse(Struct):
    success: bool
    data: RecordsPage


class AccountData(Struct):
    balance: float
    total_sent: int
    today_sent: int
    verification_status: Verification
    # Beside the seed's fields: the account's quotas (docs/quotas.md); a limit is null when none.
    daily_limit: Annotated[int | None, Meta(description="messages a day in server.timezone; null: no cap")]
    monthly_sent: Annotated[
        int, Meta(description="messages counted against monthly_limit this month: accepted or in flight")
    ]
    monthly_limit: Annotated[int | None, Meta(description="messages a month; null: no cap")]


class AccountResponse(Struct):
    success: bool
    data: AccountData
