"""Unsubscribe: effective before the response returns, including for an issue that is being sent."""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from api.webhooks.outbox import events_record, subscriber_payload
from newsletter import delivery
from subscribers.models import ConsentEvent, Subscriber, Subscription

from .ledger import NO_REQUEST, RequestMeta, consent_record


def subscriptions_end(subscriber: Subscriber, newsletter_ids: Iterable[int] | None = None) -> list[int]:
    """End active and pending subscriptions (all, or those to `newsletter_ids`); when no active one is left the
    subscriber becomes unsubscribed. The caller has withdrawn them from open sends first
    (delivery.subscriber_withdraw), holds the subscriber's row lock and writes the ledger. Returns the newsletter
    ids that changed."""
    ids = None if newsletter_ids is None else list(newsletter_ids)
    # Pending ones too: a reader who says no to a newsletter they never confirmed has answered its link.
    live = subscriber.subscriptions.filter(status__in=[Subscription.Status.ACTIVE, Subscription.Status.PENDING])
    if ids is not None:
        live = live.filter(newsletter_id__in=ids)
    ended = list(live.values_list("newsletter_id", flat=True))
    now = timezone.now()
    live.update(status=Subscription.Status.UNSUBSCRIBED, updated_at=now)
    remaining = subscriber.subscriptions.filter(status=Subscription.Status.ACTIVE).exists()
    if not remaining and subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PENDING):
        subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.save(update_fields=["status", "updated_at"])
        # Unsubscribed as a whole: nothing is left waiting for a confirmation either.
        subscriber.subscriptions.filter(status=Subscription.Status.PENDING).update(
            status=Subscription.Status.UNSUBSCRIBED, updated_at=now
        )
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
    events_record(
        "subscriber.unsubscribed",
        subscriber_payload(subscriber, newsletter=getattr(newsletter, "slug", None), source=source),
        subscriber_id=subscriber.pk,
    )
    return True
