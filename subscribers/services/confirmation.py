"""Double opt-in: the person confirms from the link in their mailbox, by pressing a button (POST)."""

from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from api.webhooks.outbox import events_record, subscriber_payload
from newsletter import delivery
from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression

from .ledger import NO_REQUEST, RequestMeta, consent_record
from .suppression import suppression_find


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"  # safe to press twice
    REFUSED = "refused"  # unsubscribed or suppressed since the link was sent


@transaction.atomic
def subscriber_confirm(
    subscriber: Subscriber, newsletter, *, source: str = ConsentEvent.Source.LINK, meta: RequestMeta = NO_REQUEST
) -> ConfirmOutcome:
    """Confirm the subscriber's consent to `newsletter`, the one their link names: that subscription becomes
    active (created if an active reader's link adds a newsletter), and a pending subscriber becomes active.
    Their other pending subscriptions stay pending: consent is specific to each newsletter (GDPR Art. 7), so a
    form someone else filled in with this address is never confirmed by confirming another newsletter.

    Refused when the person unsubscribed after the link was sent (an old link must not undo a later opt-out) or
    the address is suppressed for a bounce, complaint or by an operator. Confirming lifts an "erased"
    suppression: the person came back and proved the mailbox is theirs. Idempotent.
    """
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    suppression = suppression_find(subscriber.email)
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
    subscription, created = Subscription.objects.get_or_create(
        subscriber=subscriber, newsletter=newsletter, defaults={"status": Subscription.Status.ACTIVE}
    )
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
    delivery.welcome_add(subscriber.pk, newsletter.pk)  # the newsletter's welcome email, once per reader
    events_record(
        "subscriber.confirmed",
        subscriber_payload(subscriber, newsletter=getattr(newsletter, "slug", None)),
        subscriber_id=subscriber.pk,
    )
    return ConfirmOutcome.CONFIRMED
