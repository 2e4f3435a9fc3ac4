"""The suppression list: addresses never to be mailed or re-imported, kept only as keyed hashes."""

from datetime import datetime

from ninja import Query, Router, Schema, Status

from api.auth import require
from api.errors import field_problem
from api.idempotency import IdempotencyKeyHeader, idempotent
from api.schemas import Email, Limit, Text, cursor_dump, cursor_load
from subscribers.models import ConsentEvent, Suppression, email_hash
from subscribers.services.addresses import InvalidAddress, address_normalise
from subscribers.services.suppression import address_suppress, suppression_find

router = Router(tags=["suppressions"])


class SuppressionOut(Schema):
    email_hash: str
    reason: str
    created_at: datetime


class SuppressionPage(Schema):
    items: list[SuppressionOut]
    next_cursor: str | None


class SuppressionFilters(Schema):
    reason: Suppression.Reason | None = None
    cursor: Text(500) | None = None
    limit: Limit = 50


class SuppressIn(Schema):
    email: Email
    detail: Text(200) = ""


class CheckQuery(Schema):
    email: Email


class CheckOut(Schema):
    suppressed: bool
    reason: str | None
    email_hash: str


def _address(email: str) -> str:
    try:
        return address_normalise(email)
    except InvalidAddress as exc:
        raise field_problem("email", str(exc)) from exc


@router.get("/", response=SuppressionPage, summary="List suppressions (hashes only)")
def suppressions_list(request, filters: Query[SuppressionFilters]):
    require(request, "subscribers.view_suppression")
    rows = Suppression.objects.filter(pk__gt=cursor_load(filters.cursor)).order_by("pk")
    if filters.reason:
        rows = rows.filter(reason=filters.reason)
    items = list(rows[: filters.limit + 1])
    more = len(items) > filters.limit
    items = items[: filters.limit]
    return {"items": items, "next_cursor": cursor_dump(items[-1].pk) if more else None}


@router.get("/check", response=CheckOut, summary="Is this address suppressed?")
def suppressions_check(request, query: Query[CheckQuery]):
    require(request, "subscribers.view_suppression")
    email = _address(query.email)
    row = suppression_find(email)  # under every suppression key, so a key rotation hides nothing
    digest = row.email_hash if row else email_hash(email)
    return {"suppressed": row is not None, "reason": row.reason if row else None, "email_hash": digest}


@router.post("/", response={201: SuppressionOut}, summary="Suppress an address (never mail it again)")
@idempotent(SuppressionOut)
def suppressions_create(request, payload: SuppressIn, idempotency_key: IdempotencyKeyHeader = None):
    require(request, "subscribers.suppress_subscriber")
    email = _address(payload.email)
    address_suppress(
        email, Suppression.Reason.MANUAL, ConsentEvent.Source.API, payload.detail or f"API, by {request.auth}"
    )
    return Status(201, suppression_find(email))  # the entry, whichever key made it
