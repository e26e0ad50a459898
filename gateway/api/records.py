"""GET /api/sms/records: the caller's own records, newest first."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from msgspec import UNSET

from gateway.api.models import Record, RecordsPage, RecordsResponse
from gateway.api.validation import TIME_FORMAT, parse_records_query
from gateway.errors import store_unavailable
from gateway.keys import ACCOUNT, CONFIG, STORE
from gateway.responses import json_response
from gateway.store.base import StoreUnavailable
from gateway.store.records import Record as StoredRecord

__all__ = ["public_record", "records"]


def _local(epoch_ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, zone).strftime(TIME_FORMAT)


def public_record(record: StoredRecord, zone: ZoneInfo) -> Record:
    return Record(
        id=record.id,  # numbered per account: says nothing about other tenants
        message_id=record.message_id,
        phone=record.phone,
        template_id=record.template_id,
        provider=record.provider,
        status=record.status,
        created_at=_local(record.created_ms, zone),
        updated_at=_local(record.updated_ms, zone),
        # Yuan charged for it now (exact: at most 3 decimals); 0 once refunded.
        price=record.price_milli / 1000,
        segments=record.segments,
        no_receipt=bool(record.no_receipt),
        error=record.error if record.status == "failed" else UNSET,
    )


async def records(request: web.Request) -> web.Response:
    zone = request.app[CONFIG].server.zone
    query = parse_records_query(request.query, zone)
    try:
        page = await request.app[STORE].records(request[ACCOUNT].id, query)
    except StoreUnavailable:
        raise store_unavailable() from None
    return json_response(
        RecordsResponse(
            success=True,
            data=RecordsPage(
                records=[public_record(record, zone) for record in page.records],
                total=page.total,
                page=query.page,
                per_page=query.per_page,
            ),
        )
    )
