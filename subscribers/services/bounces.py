"""Bounces, complaints and ESP-side unsubscribes reported by django-anymail's tracking webhooks.

The signal receiver records each relevant event as a MailEvent row (fast, inside the webhook request) and a task
acts on it: hard bounces and complaints suppress the address at once; soft bounces suppress after
MASTHEAD['SOFT_BOUNCE_LIMIT'] of them; an ESP-side unsubscribe unsubscribes. A complaint also checks its issue's
complaint rate and pauses the send above MASTHEAD['COMPLAINT_PAUSE_RATE'] (default 0.1 %).
"""

import logging

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from api.webhooks.outbox import mail_event_notify
from subscribers.models import ConsentEvent, MailEvent, Subscriber, Suppression

from .addresses import subscribers_by_address
from .suppression import address_suppress
from .unsubscribe import subscriber_unsubscribe

log = logging.getLogger(__name__)

Kind = MailEvent.Kind


def event_kind(event: AnymailTrackingEvent, esp_name: str) -> str | None:
    """What the event means for the address, or None when it needs no action (deliveries, opens, clicks,
    deferrals: a deferral is the ESP still trying, and ends in a delivery or a bounce).

    Anymail normalises most of it; whether a bounce is soft needs the ESP's own fields, because several ESPs
    report soft and hard bounces with the same normalised type."""
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    if event.event_type == EventType.COMPLAINED:
        return Kind.COMPLAINT
    if event.event_type == EventType.UNSUBSCRIBED:
        return Kind.UNSUBSCRIBE
    if event.event_type == EventType.REJECTED:
        # The ESP refused to send because of its own suppression list: the address is known bad, or complained.
        if event.reject_reason == RejectReason.SPAM:
            return Kind.COMPLAINT
        if event.reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID, RejectReason.TIMED_OUT):
            return Kind.HARD_BOUNCE
        return None
    if event.event_type != EventType.BOUNCED:
        return None
    esp = esp_name.lower()
    soft = (
        (esp == "postmark" and raw.get("Type") in ("SoftBounce", "Transient", "DnsError"))
        or (esp == "amazon ses" and (raw.get("bounce") or {}).get("bounceType") in ("Transient", "Undetermined"))
        or (esp == "sendgrid" and raw.get("type") == "blocked")  # a block is the receiver's temporary refusal
        or (esp == "mailgun" and (raw.get("event-data") or {}).get("severity") == "temporary")
    )
    return Kind.SOFT_BOUNCE if soft else Kind.HARD_BOUNCE


def mail_event_record(event: AnymailTrackingEvent, esp_name: str) -> MailEvent | None:
    """Record a tracking event worth acting on and queue its processing (after commit). A webhook retried by
    the ESP (same event id) is recorded once. Returns the row, or None for events that need nothing."""
    from subscribers.tasks import mail_event_process_task

    kind = event_kind(event, esp_name)
    if kind is None or not (event.recipient or event.message_id):
        return None
    fields = {
        "message_id": (event.message_id or "")[:255],
        "recipient": (event.recipient or "")[:254],
        "kind": kind,
        "description": (event.description or event.mta_response or "")[:300],
    }
    event_id = (event.event_id or "")[:255]
    try:
        with transaction.atomic():
            if event_id:
                row, created = MailEvent.objects.get_or_create(esp=esp_name[:32], event_id=event_id, defaults=fields)
            else:
                row, created = MailEvent.objects.create(esp=esp_name[:32], **fields), True
    except IntegrityError:  # the same event arriving twice at the same moment
        return MailEvent.objects.get(esp=esp_name[:32], event_id=event_id)
    if created:
        transaction.on_commit(lambda: mail_event_process_task.delay(row.pk))
    return row


def _delivery_for(message_id: str):
    from newsletter.models import Delivery

    bare = message_id.strip().strip("<>")
    if not bare:
        return None
    candidates = {message_id.strip(), bare, f"<{bare}>"}
    return Delivery.objects.filter(message_id__in=candidates).select_related("issue", "subscriber").first()


def mail_event_process(event: MailEvent) -> str:
    """Act on a recorded event. Idempotent: the row is claimed under a lock and marked processed, so a task run
    twice acts once. Returns what was done."""
    with transaction.atomic():
        event = MailEvent.objects.select_for_update().get(pk=event.pk)
        if event.processed_at:
            return "already processed"
        delivery = _delivery_for(event.message_id) if event.message_id else None
        subscriber = delivery.subscriber if delivery else None
        if subscriber is None and event.recipient:
            subscriber = subscribers_by_address(Subscriber.objects.all(), event.recipient).first()
        event.issue = delivery.issue if delivery else None
        event.subscriber = subscriber
        address = event.recipient or (subscriber.email if subscriber else "")
        outcome = _act(event, subscriber, address)
        event.processed_at = timezone.now()
        event.save(update_fields=["issue", "subscriber", "processed_at"])
    if event.kind == Kind.COMPLAINT and event.issue_id and issue_complaint_check(event.issue):
        outcome += "; issue paused"
    return outcome


def _act(event: MailEvent, subscriber: Subscriber | None, address: str) -> str:
    detail = f"{event.esp}: {event.get_kind_display()}"
    if not address:
        return "no address"
    mail_event_notify(event, address)
    if event.kind == Kind.HARD_BOUNCE:
        address_suppress(address, Suppression.Reason.HARD_BOUNCE, ConsentEvent.Source.WEBHOOK, detail)
        return "suppressed (hard bounce)"
    if event.kind == Kind.COMPLAINT:
        address_suppress(address, Suppression.Reason.COMPLAINT, ConsentEvent.Source.WEBHOOK, detail)
        return "suppressed (complaint)"
    if event.kind == Kind.SOFT_BOUNCE:
        if subscriber is None:
            return "soft bounce for an unknown address"
        Subscriber.objects.filter(pk=subscriber.pk).update(soft_bounces=F("soft_bounces") + 1)
        subscriber.refresh_from_db(fields=["soft_bounces"])
        if subscriber.soft_bounces >= settings.MASTHEAD.get("SOFT_BOUNCE_LIMIT", 3):
            address_suppress(address, Suppression.Reason.SOFT_BOUNCES, ConsentEvent.Source.WEBHOOK, detail)
            return f"suppressed after {subscriber.soft_bounces} soft bounces"
        return f"soft bounce {subscriber.soft_bounces}"
    if event.kind == Kind.UNSUBSCRIBE and subscriber is not None:
        newsletter = event.issue.newsletter if event.issue_id else None
        subscriber_unsubscribe(subscriber, newsletter, source=ConsentEvent.Source.WEBHOOK)
        return "unsubscribed"
    return "nothing to do"


def issue_complaint_rate(issue) -> float:
    """Complaints about the issue per message sent (0 when nothing was sent yet)."""
    from newsletter.models import Delivery

    sent = Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count()
    complaints = MailEvent.objects.filter(issue=issue, kind=Kind.COMPLAINT).count()
    return complaints / sent if sent else float(complaints > 0)


def issue_complaint_check(issue) -> bool:
    """Pause the issue's send when its complaint rate is above MASTHEAD['COMPLAINT_PAUSE_RATE']. Returns whether
    this call paused it (an issue already paused, finished or cancelled is left alone)."""
    from newsletter.models import Issue

    threshold = settings.MASTHEAD.get("COMPLAINT_PAUSE_RATE", 0.001)
    rate = issue_complaint_rate(issue)
    if rate <= threshold:
        return False
    issue.refresh_from_db(fields=["status"])
    if issue.status != Issue.Status.SENDING:
        return False
    reason = f"complaint rate {rate:.2%} is above {threshold:.2%}"
    from newsletter.services.sending import SendError, issue_pause

    try:
        issue_pause(issue, reason=reason)
    except SendError:  # it finished, was paused or cancelled since the status was read
        return False
    log.warning("Paused issue %s: %s", issue.pk, reason)
    return True
