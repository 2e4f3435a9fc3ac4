"""A person's rights over their data: a copy of everything held about them, and erasure."""

from django.db import transaction
from django.utils import timezone

from api.webhooks.outbox import events_record
from newsletter import delivery
from newsletter.models import Delivery
from subscribers import dispatch
from subscribers.models import ConsentEvent, MailEvent, Subscriber, Suppression

from .ledger import consent_record
from .suppression import address_canonical, suppression_add


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def subscriber_export(subscriber: Subscriber) -> dict:
    """Everything held about the subscriber, as JSON-ready data: the record, subscriptions, consent history,
    deliveries and bounce/complaint reports."""

    return {
        "exported_at": timezone.now().isoformat(),
        "subscriber": {
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status,
            "source": subscriber.source,
            "language": subscriber.language,
            "created_at": _iso(subscriber.created_at),
            "confirmed_at": _iso(subscriber.confirmed_at),
            "soft_bounces": subscriber.soft_bounces,
        },
        "subscriptions": [
            {
                "newsletter": s.newsletter.name,
                "newsletter_slug": s.newsletter.slug,
                "status": s.status,
                "since": _iso(s.created_at),
                "updated_at": _iso(s.updated_at),
            }
            for s in subscriber.subscriptions.select_related("newsletter").order_by("created_at")
        ],
        "consent_history": [
            {
                "at": _iso(e.created_at),
                "event": e.kind,
                "source": e.source,
                "newsletter": e.newsletter.slug if e.newsletter else None,
                "policy_version": e.policy_version,
                "consent_text": e.consent_text,
                "ip_address": e.ip_address,
                "user_agent": e.user_agent,
                "detail": e.detail,
            }
            for e in subscriber.consent_events.select_related("newsletter").order_by("created_at", "id")
        ],
        "deliveries": [
            {
                "issue": d.issue.frozen_subject or d.issue.subject,
                "newsletter": d.issue.newsletter.slug,
                "status": d.status,
                "sent_at": _iso(d.sent_at),
            }
            for d in Delivery.objects.filter(subscriber=subscriber).select_related("issue__newsletter").order_by("id")
        ],
        "mail_events": [
            {"at": _iso(m.created_at), "kind": m.kind, "provider": m.esp, "description": m.description}
            for m in subscriber.mail_events.order_by("created_at")
        ],
    }


def subscriber_export_request(subscriber: Subscriber) -> None:
    """Email the person a signed, expiring download link (after commit, on the priority queue)."""
    dispatch.export_link_send_later(subscriber.pk)


def subscriber_erase_request(subscriber: Subscriber) -> None:
    """Email the person the link that confirms their erasure (after commit, on the priority queue)."""
    dispatch.erase_link_send_later(subscriber.pk)


@transaction.atomic
def subscriber_erase(subscriber: Subscriber, source: str = ConsentEvent.Source.LINK, detail: str = "") -> str:
    """Erase a person: delete their record, subscriptions and delivery personalisation; blank the personal
    fields of their ledger rows and bounce reports; keep only a keyed hash of the address on the suppression
    list (reason "erased", unless a stronger reason is already there) so an import or operator can never re-add
    them. They may still sign up again themselves (see signup.py). Returns the hash. Safe to call twice (the
    second call finds nothing to erase)."""
    # An issue being sent stops for them now (before the subscriber lock: the sender's lock order).
    delivery.subscriber_withdraw(subscriber.pk, reason="erased")
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    entry, _ = suppression_add(address_canonical(subscriber.email), Suppression.Reason.ERASED)
    digest = entry.email_hash
    # SMTP replies quote the address; the rest of a delivery (issue, status, time) is kept for the issue's counts.
    delivery.subscriber_forget(subscriber.pk)
    MailEvent.objects.filter(subscriber=subscriber).update(recipient="", description="", subscriber=None)
    MailEvent.objects.filter(recipient__iexact=subscriber.email).update(recipient="", description="")
    subscriber.consent_events.update(ip_address="", user_agent="", detail="")
    # The ledger keeps that consent was given and withdrawn; the erase row links the history to the hash only.
    reference = f"suppression {digest[:16]}"
    subscriber.consent_events.update(subscriber=None, detail=reference)
    consent_record(None, ConsentEvent.Kind.ERASE, source, detail=(detail + " " if detail else "") + reference)
    events_record("subscriber.erased", {"id": subscriber.pk, "email_hash": digest}, subscriber_id=subscriber.pk)
    subscriber.delete()
    return digest
