"""Bounces, complaints and ESP-side unsubscribes reported by django-anymail's tracking webhooks.

The signal receiver records each relevant event as a MailEvent row (fast, inside the webhook request) and a task
acts on it: hard bounces and complaints suppress the address at once; soft bounces suppress after
SOFT_BOUNCE_LIMIT of them; an ESP-side unsubscribe unsubscribes. A complaint also checks its issue's
complaint rate and pauses the send above COMPLAINT_PAUSE_RATE (newsletter.delivery.issue_complaint_check).
"""

import re

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from api.webhooks.outbox import mail_event_notify
from newsletter import delivery
from newsletter.conf import app_settings
from subscribers import dispatch
from subscribers.models import ConsentEvent, MailEvent, Subscriber, Suppression

from .addresses import subscribers_by_address
from .rows import row_insert_new
from .suppression import address_canonical, address_suppress
from .unsubscribe import subscriber_unsubscribe

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
    the ESP (same event id and recipient) is recorded once; one notification naming several recipients (an SES
    bounce) is recorded once per recipient. Returns the row, or None for events that need nothing."""
    kind = event_kind(event, esp_name)
    if kind is None or not (event.recipient or event.message_id):
        return None
    row, created = mail_event_store(
        esp=esp_name,
        event_id=event.event_id or "",
        kind=kind,
        recipient=event.recipient or "",
        message_id=_delivery_message_id(event),
        description=event.description or event.mta_response or "",
    )
    if created:
        dispatch.mail_event_process_later(row.pk)
    return row


def _header_message_ids(raw: object) -> list[str]:
    """The Message-ID header the ESP reports beside its own id: ours, when the mail went through its SMTP relay."""
    if not isinstance(raw, dict):
        return []
    found: list[object] = []
    mail = raw.get("mail") if isinstance(raw.get("mail"), dict) else {}  # Amazon SES
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    found.append(common.get("messageId"))
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            found.append(header.get("value"))
    found.append(raw.get("smtp-id"))  # SendGrid
    return [value for value in found if isinstance(value, str) and value.strip()]


def _delivery_message_id(event: AnymailTrackingEvent) -> str:
    """The message id to find the event's delivery by: the ESP's own id when a delivery carries it (sent through
    the ESP's API), else the Message-ID header it reports (sent through its SMTP relay), else the ESP's id."""
    ids = [event.message_id or "", *_header_message_ids(event.esp_event)]
    for message_id in ids:
        if message_id and delivery.delivery_find_by_message_id(message_id):
            return message_id
    return ids[0]


def mail_event_store(
    esp: str,
    event_id: str,
    kind: str,
    recipient: str = "",
    message_id: str = "",
    description: str = "",
    delivery_id: int | None = None,
    issue_id: int | None = None,
    subscriber_id: int | None = None,
    processed_at=None,
) -> tuple[MailEvent, bool]:
    """Store one event, once per (esp, event id, recipient). Returns the row and whether it is new.

    `issue_id`, `subscriber_id`, `processed_at`: for a caller that acts on the event in the same transaction
    (mail_event_process with just_stored), what the row will say once acted on, so it is written once."""
    esp, event_id, recipient = esp[:32], event_id[:255], recipient[:254]
    fields = {
        "message_id": message_id[:255],
        "kind": kind,
        "description": description[:300],
        "delivery_id": delivery_id,
        "issue_id": issue_id,
        "subscriber_id": subscriber_id,
        "processed_at": processed_at,
    }
    event = MailEvent(esp=esp, event_id=event_id, recipient=recipient, **fields)
    if row_insert_new(event):  # one statement; a redelivered or concurrent twin conflicts and writes nothing
        return event, True
    return MailEvent.objects.get(esp=esp, event_id=event_id, recipient=recipient), False


def mail_event_process(
    event: MailEvent,
    source: str = ConsentEvent.Source.WEBHOOK,
    sent: delivery.DeliveryRef | None = None,
    just_stored: bool = False,
) -> str:
    """Act on a recorded event: suppress or count against the address, and record the bounce or complaint on
    its delivery row. Idempotent: the row is claimed under a lock and marked processed, so a task run twice acts
    once. `sent`: the event's delivery when the caller has just looked it up. `just_stored`: the caller created the
    event in its own transaction (mail_event_store said new), so the row is already its to act on: no one else
    can see it, let alone claim it, before that transaction commits. Returns what was done."""
    # No savepoint inside a caller's transaction (the inbound doors'): a failure here fails the whole message.
    claimed = just_stored and transaction.get_connection().in_atomic_block
    with transaction.atomic(savepoint=False):
        if not claimed:
            event = MailEvent.objects.select_for_update().get(pk=event.pk)
        if event.processed_at and not claimed:
            return "already processed"
        stored = (event.delivery_id, event.issue_id, event.subscriber_id)
        marked = claimed and event.processed_at is not None
        if sent is None or sent.id != event.delivery_id:
            if event.delivery_id:
                sent = delivery.delivery_find(event.delivery_id)
            else:
                sent = (
                    delivery.delivery_find_by_message_id(event.message_id, event.recipient)
                    if event.message_id
                    else None
                )
        subscriber = Subscriber.objects.filter(pk=sent.subscriber_id).first() if sent and sent.subscriber_id else None
        if subscriber is None and event.recipient:
            # ESPs report internationalised domains in their ASCII (IDNA) form; subscribers are on file in the
            # canonical form signup and import store.
            subscriber = subscribers_by_address(Subscriber.objects.all(), address_canonical(event.recipient)).first()
        event.delivery_id = sent.id if sent else None
        event.issue_id = sent.issue_id if sent else None
        event.subscriber = subscriber
        address = event.recipient or (subscriber.email if subscriber else "")
        outcome = _act(event, subscriber, address, source)
        if sent:
            _record_on_delivery(event, sent.id)
        if not marked or stored != (event.delivery_id, event.issue_id, event.subscriber_id):
            # (An event its caller stored already marked, with what it now says, is written as it must be.)
            event.processed_at = timezone.now()
            event.save(update_fields=["delivery", "issue", "subscriber", "processed_at"])
    if event.kind == Kind.COMPLAINT and event.issue_id and delivery.issue_complaint_check(event.issue_id):
        outcome += "; issue paused"
    return outcome


# An RFC 3463 enhanced status code (5.1.1), else a basic SMTP reply code (550) at the start of a diagnostic.
_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b|^[245]\d\d\b")


def _record_on_delivery(event: MailEvent, delivery_id: int) -> None:
    if event.kind in (Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE):
        code = _STATUS.search(event.description)
        delivery.delivery_record_bounce(
            delivery_id, event.kind == Kind.HARD_BOUNCE, code.group(0) if code else "", event.description
        )
    elif event.kind == Kind.COMPLAINT:
        delivery.delivery_record_complaint(delivery_id)


def _act(event: MailEvent, subscriber: Subscriber | None, address: str, source: str) -> str:
    # Inside mail_event_process's transaction (no savepoint of its own: a failure fails the whole event), with
    # the subscriber it already read.
    known = {"savepoint": False, "subscriber": subscriber}
    detail = f"{event.esp}: {event.get_kind_display()}"
    if not address:
        return "no address"
    mail_event_notify(event, address)
    if event.kind == Kind.HARD_BOUNCE:
        address_suppress(address, Suppression.Reason.HARD_BOUNCE, source, detail, **known)
        return "suppressed (hard bounce)"
    if event.kind == Kind.COMPLAINT:
        address_suppress(address, Suppression.Reason.COMPLAINT, source, detail, **known)
        return "suppressed (complaint)"
    if event.kind == Kind.SOFT_BOUNCE:
        if subscriber is None:
            return "soft bounce for an unknown address"
        Subscriber.objects.filter(pk=subscriber.pk).update(soft_bounces=F("soft_bounces") + 1)
        subscriber.refresh_from_db(fields=["soft_bounces"])
        if subscriber.soft_bounces >= app_settings.SOFT_BOUNCE_LIMIT:
            address_suppress(address, Suppression.Reason.SOFT_BOUNCES, source, detail, **known)
            return f"suppressed after {subscriber.soft_bounces} soft bounces"
        return f"soft bounce {subscriber.soft_bounces}"
    if event.kind == Kind.UNSUBSCRIBE and subscriber is not None:
        newsletter = event.issue.newsletter if event.issue_id else None
        subscriber_unsubscribe(subscriber, newsletter, source=source)
        return "unsubscribed"
    return "nothing to do"
