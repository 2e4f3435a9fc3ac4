"""Double opt-in: the person confirms from the link in their mailbox, by pressing a button (POST)."""

from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from api.webhooks.outbox import events_record, subscriber_payload
from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression, email_hash

from .ledger import NO_REQUEST, RequestMeta, consent_record


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"  # safe to press twice
    REFUSED = "refused"  # unsubscribed or suppressed since the link was sent


@transaction.atomic
def subscriber_confirm(
    subscriber: Subscriber, newsletter=None, *, source: str = ConsentEvent.Source.LINK, meta: RequestMeta = NO_REQUEST
) -> ConfirmOutcome:
    """Activate a pending subscriber (and, when the link names one, their subscription to `newsletter`).

    Refused when the person unsubscribed after the link was sent (an old link must not undo a later opt-out) or
    the address is suppressed for a bounce, complaint or by an operator. Confirming lifts an "erased"
    suppression: the person came back and proved the mailbox is theirs. Idempotent.
    """
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    suppression = Suppression.objects.filter(email_hash=email_hash(subscriber.email)).first()
    blocked = suppression is not None and suppression.reason != Suppression.Reason.ERASED
    if blocked or subscriber.status in (Subscriber.Status.SUPPRESSED, Subscriber.Status.UNSUBSCRIBED):
        return ConfirmOutcome.REFUSED

    changed = False
    now = timezone.now()
    if subscriber.status == Subscriber.Status.PENDING:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = now
        subscriber.save(update_fields=["status", "confirmed_at", "updated_at"])
        changed = True
    if newsletter is not None:
        subscription, created = Subscription.objects.get_or_create(subscriber=subscriber, newsletter=newsletter)
        if not created and subscription.status != Subscription.Status.ACTIVE:
            subscription.status = Subscription.Status.ACTIVE
            subscription.save(update_fields=["status", "updated_at"])
            created = True
        changed = changed or created
    if suppression is not None:
        suppression.delete()
    if not changed:
        return ConfirmOutcome.ALREADY_CONFIRMED
    consent_record(subscriber, ConsentEvent.Kind.CONFIRM, source, newsletter=newsletter, meta=meta)
    events_record(
        "subscriber.confirmed",
        subscriber_payload(subscriber, newsletter=getattr(newsletter, "slug", None)),
        subscriber_id=subscriber.pk,
    )
    return ConfirmOutcome.CONFIRMED
