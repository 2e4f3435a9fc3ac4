"""Unsubscribe: effective before the response returns, including for an issue that is being sent."""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from newsletter import delivery
from subscribers.models import ConsentEvent, Subscriber, Subscription

from .ledger import NO_REQUEST, RequestMeta, consent_record


def subscriptions_end(subscriber: Subscriber, newsletter_ids: Iterable[int] | None = None) -> list[int]:
    """End active subscriptions (all, or those to `newsletter_ids`); when none is left the subscriber becomes
    unsubscribed. The caller has withdrawn them from open sends first (delivery.subscriber_withdraw), holds the
    subscriber's row lock and writes the ledger. Returns the newsletter ids that changed."""
    ids = None if newsletter_ids is None else list(newsletter_ids)
    active = subscriber.subscriptions.filter(status=Subscription.Status.ACTIVE)
    if ids is not None:
        active = active.filter(newsletter_id__in=ids)
    ended = list(active.values_list("newsletter_id", flat=True))
    active.update(status=Subscription.Status.UNSUBSCRIBED, updated_at=timezone.now())
    remaining = subscriber.subscriptions.filter(status=Subscription.Status.ACTIVE).exists()
    if not remaining and subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PENDING):
        subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.save(update_fields=["status", "updated_at"])
        ended = ended or [0]  # the subscriber itself changed, even with no subscription rows
    return ended


@transaction.atomic
def subscriber_unsubscribe(
    subscriber: Subscriber,
    newsletter=None,
    source: str = ConsentEvent.Source.LINK,
    meta: RequestMeta = NO_REQUEST,
) -> bool:
    """Unsubscribe from `newsletter`, or from everything when it is None. Idempotent: returns whether anything
    changed, and only a change is written to the ledger."""
    ids = None if newsletter is None else [newsletter.pk]
    # Deliveries before the subscriber row: the lock order of a sender's claim (deliveries, then subscribers).
    delivery.subscriber_withdraw(subscriber.pk, ids, reason="unsubscribed")
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    ended = subscriptions_end(subscriber, ids)
    if not ended:
        return False
    consent_record(subscriber, ConsentEvent.Kind.UNSUBSCRIBE, source, newsletter=newsletter, meta=meta)
    return True
