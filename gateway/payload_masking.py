"""Masking a decoded JSON document (answers, stored responses, log fields) before it is shown.

``gateway.phones`` reads numbers in free text; here a structure is walked and its keys decide: an
identifier, a time or a count is left whole, a template id keeps the carriers' own numbers, and
an integer that reads as a phone number is masked like one.
"""

from __future__ import annotations

from typing import Any

from gateway.phones import mask_template_id, scrub

__all__ = ["SAFE_KEYS", "mask_payload"]

#: Keys whose values are identifiers, times or counts, never a number to hide.
SAFE_KEYS = frozenset(
    {
        "id",
        "message_id",
        "request_id",
        "created_at",
        "updated_at",
        "code",
        "provider",
        "status",
        "verification_status",
        "total",
        "page",
        "per_page",
        "success_count",
        "failed_count",
        "total_sent",
        "today_sent",
        "balance",
    }
)
# An integer with fewer digits than the shortest run ``scrub`` masks (7) holds no number to look for.
_SHORTEST_PHONE = 10**6


def mask_payload(value: Any, key: str | None = None) -> Any:
    """Mask phone-shaped values anywhere in a JSON-like structure (keys included).

    Integers are masked too when they are a valid number (``{"mobile": 13912345678}``), unless
    their key says they are a count or an id.
    """
    if isinstance(value, str):
        if key == "template_id":
            return mask_template_id(value)
        return value if key in SAFE_KEYS else scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: mask_payload(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_payload(item, key) for item in value]
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and key not in SAFE_KEYS
        and (abs(value) >= _SHORTEST_PHONE)
    ):
        masked = scrub(str(value))
        return value if masked == str(value) else masked
    return value
