"""The outbox writer. Services call `events_record` inside the transaction that makes the change, so an event
exists exactly when its change was committed (no event for a rolled-back change, no change without its event).

Imports only models and the dispatcher: the newsletter and subscribers services import this module.
"""

import json
from typing import Any

from django.utils import timezone

from api import dispatch
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from newsletter.models import Delivery


def events_record(type: str, payload: dict[str, Any], *, subscriber_id: int | None = None) -> None:
    """Append one event of `type` with `payload` (JSON-ready) for every active endpoint that listens to it, and
    queue its deliveries once the transaction commits. Nothing is written when no endpoint listens.

    `subscriber.erased` also blanks the address and name in every earlier event about the same subscriber (the
    person asked to be forgotten; the outbox and its log must not remember them either)."""
    if type == "subscriber.erased" and subscriber_id is not None:
        _forget_subscriber(subscriber_id)
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True) if e.listens_to(type)]
    if not endpoints:
        return
    now = timezone.now()
    envelope = {"type": type, "timestamp": now.isoformat(), "data": payload}
    event = WebhookEvent.objects.create(
        msg_id=WebhookEvent.new_msg_id(),
        type=type,
        body=json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str),
        subscriber_id=subscriber_id,
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, queued_at=now) for endpoint in endpoints
    )
    ids = [d.pk for d in deliveries]
    if ids[0] is None:  # backends without RETURNING on bulk insert (older SQLite)
        ids = list(WebhookDelivery.objects.filter(event=event).values_list("pk", flat=True))
    dispatch.webhook_deliver_later(ids)


def _forget_subscriber(subscriber_id: int) -> None:
    for event in WebhookEvent.objects.filter(subscriber_id=subscriber_id).only("pk", "body"):
        envelope = json.loads(event.body)
        data = envelope.get("data") or {}
        for field in ("email", "name"):
            if data.get(field):
                data[field] = ""
        event.body = json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str)
        event.save(update_fields=["body"])


def subscriber_payload(subscriber, **extra: Any) -> dict[str, Any]:
    """What a subscriber event says about the person (the API's subscriber id, address, name, status)."""
    return {
        "id": subscriber.pk,
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        **extra,
    }


def issue_payload(issue, **extra: Any) -> dict[str, Any]:
    return {
        "id": issue.pk,
        "newsletter": getattr(issue.newsletter, "slug", None) if issue.newsletter_id else None,
        "subject": issue.frozen_subject or issue.subject,
        "status": issue.status,
        **extra,
    }


def mail_event_notify(event, address: str) -> None:
    """delivery.bounced / delivery.complained for a bounce or complaint an ESP reported (a MailEvent being
    processed); nothing for other kinds."""
    kind = {"hard_bounce": "hard", "soft_bounce": "soft", "complaint": "complaint"}.get(event.kind)
    if kind is None:
        return
    payload = {
        "kind": kind,
        "source": "esp",
        "provider": event.esp,
        "email": address,
        "subscriber_id": event.subscriber_id,
        "issue_id": event.issue_id,
        "description": event.description,
    }
    type = "delivery.complained" if kind == "complaint" else "delivery.bounced"
    events_record(type, payload, subscriber_id=event.subscriber_id)


def smtp_bounce_notify(delivery_id: int, email: str, code: str, text: str) -> None:
    """delivery.bounced for a hard bounce our own SMTP client got as the server's reply."""
    delivery = Delivery.objects.filter(pk=delivery_id).values("issue_id", "subscriber_id").first() or {}
    payload = {
        "kind": "hard",
        "source": "smtp",
        "email": email,
        "subscriber_id": delivery.get("subscriber_id"),
        "issue_id": delivery.get("issue_id"),
        "description": f"{code} {text}".strip()[:300],
    }
    events_record("delivery.bounced", payload, subscriber_id=delivery.get("subscriber_id"))
