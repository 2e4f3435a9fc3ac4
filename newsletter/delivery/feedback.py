"""What comes back after a delivery was handed over: a bounce or a spam complaint, recorded on its Delivery row.

The subscribers app (ESP webhooks, the inbound mail doors) finds deliveries and records these through the
functions here, exported by newsletter.delivery; it never writes Delivery rows itself. The row's status stays
`sent` (the receiving server took it); `bounce_*` and `complained_at` say what happened afterwards, and the issue's
progress counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from newsletter.models import Delivery


@dataclass(frozen=True)
class DeliveryRef:
    """The little a bounce handler needs to know about a delivery."""

    id: int
    issue_id: int
    newsletter_id: int
    subscriber_id: int | None
    email: str  # "" when the subscriber was erased
    message_id: str


def _ref(row: dict) -> DeliveryRef:
    return DeliveryRef(
        id=row["id"],
        issue_id=row["issue_id"],
        newsletter_id=row["issue__newsletter_id"],
        subscriber_id=row["subscriber_id"],
        email=row["subscriber__email"] or "",
        message_id=row["message_id"],
    )


_FIELDS = ("id", "issue_id", "issue__newsletter_id", "subscriber_id", "subscriber__email", "message_id")


def delivery_find(delivery_id: int) -> DeliveryRef | None:
    row = Delivery.objects.filter(pk=delivery_id).values(*_FIELDS).first()
    return _ref(row) if row else None


def delivery_find_by_message_id(message_id: str, recipient: str = "") -> DeliveryRef | None:
    """The delivery an ESP reports by the message id it was given (with or without angle brackets). When one id
    covers several deliveries (one message to several recipients), the one to `recipient`."""
    bare = message_id.strip().strip("<>")
    if not bare:
        return None
    candidates = {message_id.strip(), bare, f"<{bare}>"}
    # `exclude("")` states the partial index delivery_message_id's condition, so the planner may use it.
    rows = Delivery.objects.filter(message_id__in=candidates).exclude(message_id="").order_by("id")
    if recipient:
        mine = rows.filter(subscriber__email__iexact=recipient.strip()).values(*_FIELDS).first()
        if mine:
            return _ref(mine)
    row = rows.values(*_FIELDS).first()
    return _ref(row) if row else None


def delivery_record_bounce(delivery_id: int, hard: bool, code: str = "", text: str = "") -> bool:
    """Record a bounce on the delivery. A hard bounce replaces an earlier soft one, never the reverse; the status
    code and diagnostic text are the latest of the kind kept. Safe to call twice. Returns whether a row changed."""
    rows = Delivery.objects.filter(pk=delivery_id)
    if not hard:
        rows = rows.filter(~Q(bounce_kind=Delivery.BounceKind.HARD))
    return bool(
        rows.update(
            bounce_kind=Delivery.BounceKind.HARD if hard else Delivery.BounceKind.SOFT,
            bounce_code=code[:16],
            bounce_text=text[:300],
            bounced_at=timezone.now(),
            updated_at=timezone.now(),
        )
    )


def delivery_record_complaint(delivery_id: int) -> bool:
    """Record a spam complaint on the delivery (the first one's time is kept). Returns whether a row changed."""
    now = timezone.now()
    return bool(
        Delivery.objects.filter(pk=delivery_id, complained_at__isnull=True).update(complained_at=now, updated_at=now)
    )
