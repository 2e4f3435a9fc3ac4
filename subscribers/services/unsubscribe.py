"""Unsubscribe: effective before the response returns, including for an issue that is being sent."""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from api.webhooks.outbox import events_record, subscriber_payload
from subscribers.models import ConsentEvent, Subscriber, Subscription

from .ledger import NO_REQUEST, RequestMeta, consent_record

# Issues whose pending rows may still be claimed by a sender.
IN_PROGRESS = ("scheduled", "sending", "paused", "failed")


def deliveries_skip_for(
    subscriber: Subscriber, newsletter_ids: Iterable[int] | None = None, reason: str = "unsubscribed"
) -> int:
    """Mark the subscriber's not-yet-claimed Delivery rows of in-progress issues skipped, so a send underway stops
    for them at once. Rows already claimed ("sending") are in flight and cannot be recalled; the claim itself
    re-checks statuses, so rows materialised after this commit are skipped by the sender. Returns rows changed."""
    from newsletter.models import Delivery

    rows = Delivery.objects.filter(
        subscriber=subscriber,
        status__in=[Delivery.Status.PENDING, Delivery.Status.DEFERRED],
        issue__status__in=IN_PROGRESS,
    )
    if newsletter_ids is not None:
        rows = rows.filter(issue__newsletter_id__in=list(newsletter_ids))
    return rows.update(status=Delivery.Status.SKIPPED, error_code=reason[:16], updated_at=timezone.now())


def subscriptions_end(subscriber: Subscriber, newsletter_ids: Iterable[int] | None = None) -> list[int]:
    """End active subscriptions (all, or those to `newsletter_ids`); when none is left the subscriber becomes
    unsubscribed. The caller has called deliveries_skip_for first, holds the subscriber's row lock and writes
    the ledger. Returns the newsletter ids that changed."""
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
    deliveries_skip_for(subscriber, ids)
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
