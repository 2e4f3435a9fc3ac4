"""Who may be mailed an issue: one definition, from which the materialise SQL, the claim's re-check and the ORM
count are all built.

A subscriber is mailable for a newsletter when they exist (not erased), their own status is active (confirmed,
not unsubscribed from everything, not suppressed) and their subscription to that newsletter is active. The
suppression list needs no test of its own: suppressing an address sets its subscriber's status.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet

from subscribers.models import Subscriber, Subscription

SUBSCRIBER_STATUS = Subscriber.Status.ACTIVE
SUBSCRIPTION_STATUS = Subscription.Status.ACTIVE


def mailable_subscribers(newsletter_id: int) -> QuerySet[Subscriber]:
    """The newsletter's mailable subscribers (counts before a send is materialised)."""
    return Subscriber.objects.filter(
        status=SUBSCRIBER_STATUS,
        subscriptions__newsletter_id=newsletter_id,
        subscriptions__status=SUBSCRIPTION_STATUS,
    )


@dataclass(frozen=True)
class MailableSql:
    """Raw SQL for keyset chunks of a newsletter's mailable subscribers (materialise): the walk goes over the
    newsletter's own active subscriptions by subscriber id (index subscription_keyset), never over every
    subscriber, and joins each to its subscriber by primary key. `m.subscriber_id` is the keyset column."""

    newsletter_id: int

    @property
    def subscriptions(self) -> tuple[str, list]:
        """FROM and WHERE (without the keyset bounds) of the newsletter's active subscriptions `m`."""
        table = Subscription._meta.db_table
        return f"{table} m WHERE m.newsletter_id = %s AND m.status = %s", [self.newsletter_id, SUBSCRIPTION_STATUS]

    @property
    def mailable(self) -> tuple[str, list]:
        """FROM … WHERE (without the keyset bounds) of the mailable subscribers `s` with their subscription `m`."""
        subscriber, subscription = Subscriber._meta.db_table, Subscription._meta.db_table
        sql = (
            f"{subscription} m JOIN {subscriber} s ON s.id = m.subscriber_id "
            "WHERE m.newsletter_id = %s AND m.status = %s AND s.status = %s"
        )
        return sql, [self.newsletter_id, SUBSCRIPTION_STATUS, SUBSCRIBER_STATUS]


def mailable_sql(newsletter_id: int) -> MailableSql:
    return MailableSql(newsletter_id)


def subscribed(newsletter_id: int) -> Exists:
    """Annotation for Delivery rows: whether the row's subscriber has an active subscription to the newsletter."""
    return Exists(
        Subscription.objects.filter(
            subscriber_id=OuterRef("subscriber_id"), newsletter_id=newsletter_id, status=SUBSCRIPTION_STATUS
        )
    )


def unmailable_reason(email: str | None, status: str | None, is_subscribed: bool) -> str | None:
    """Why a materialised row's subscriber may no longer be mailed (the claim's re-check), or None when they may.
    `email` is None when the subscriber was erased (the row's subscriber is gone)."""
    if email is None:
        return "subscriber erased"
    if status != SUBSCRIBER_STATUS:
        return f"subscriber {status}"
    if not is_subscribed:
        return "unsubscribed from this newsletter"
    return None
