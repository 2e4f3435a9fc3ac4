"""Preferences: the token-linked page where a person picks newsletters, changes their name, or leaves."""

from collections.abc import Iterable

from django.db import transaction

from newsletter import delivery
from newsletter.models import Newsletter
from subscribers.models import ConsentEvent, Subscriber, Subscription

from .addresses import name_clean
from .ledger import NO_REQUEST, RequestMeta, consent_record
from .unsubscribe import subscriptions_end


def subscriber_newsletter_ids(subscriber: Subscriber) -> set[int]:
    return set(
        subscriber.subscriptions.filter(status=Subscription.Status.ACTIVE).values_list("newsletter_id", flat=True)
    )


@transaction.atomic
def subscriber_preferences_update(
    subscriber: Subscriber,
    newsletters: Iterable,
    name: str,
    *,
    consent_text: str = "",
    policy_version: str = "",
    meta: RequestMeta = NO_REQUEST,
    source: str = ConsentEvent.Source.LINK,
) -> list[str]:
    """Make the subscriber's active subscriptions exactly `newsletters` and set their name.

    The link was mailed to the person, so choosing newsletters here is their consent (recorded with the wording
    shown): an unsubscribed person who picks one becomes active again. A suppressed address can't be added to
    anything. Removing a newsletter stops its in-progress sends at once, as an unsubscribe does. Returns a list
    of human-readable changes (empty when nothing changed); only a change is written to the ledger.
    """
    wanted = {n.pk: n for n in newsletters}
    current = subscriber_newsletter_ids(subscriber)
    removed = current - set(wanted)
    if removed:
        # Before the subscriber lock: the sender's lock order.
        delivery.subscriber_withdraw(subscriber.pk, removed, reason="unsubscribed")
    subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
    changes: list[str] = []
    suppressed = subscriber.status == Subscriber.Status.SUPPRESSED
    added = [] if suppressed else [pk for pk in wanted if pk not in current]
    for pk in added:
        subscription, created = Subscription.objects.get_or_create(
            subscriber=subscriber, newsletter_id=pk, defaults={"status": Subscription.Status.ACTIVE}
        )
        if not created:
            subscription.status = Subscription.Status.ACTIVE
            subscription.save(update_fields=["status", "updated_at"])
        changes.append(f"added {wanted[pk].slug}")
    if added and subscriber.status == Subscriber.Status.UNSUBSCRIBED:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.save(update_fields=["status", "updated_at"])
    if removed:
        subscriptions_end(subscriber, removed)
        slugs = Newsletter.objects.filter(pk__in=removed).values_list("slug", flat=True)
        changes.append("removed " + ", ".join(sorted(slugs)))
    name = name_clean(name)
    if name != subscriber.name:
        subscriber.name = name
        subscriber.save(update_fields=["name", "updated_at"])
        changes.append("changed name")
    if changes:
        consent_record(
            subscriber,
            ConsentEvent.Kind.PREFERENCES,
            source,
            meta=meta,
            consent_text=consent_text if added else "",
            policy_version=policy_version if added else "",
            detail="; ".join(changes),
        )
    return changes
