"""Who may be mailed an issue: one definition, from which the materialise SQL, the claim's re-check and the ORM
count are all built.

A subscriber is mailable for a newsletter when they exist (not erased), their own status is active (confirmed,
not unsubscribed from everything, not suppressed) and their subscription to that newsletter is active. The
suppression list needs no test of its own: suppressing an address sets its subscriber's status.
"""

from __future__ import annotations

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


def mailable_sql(newsletter_id: int) -> tuple[str, str, list]:
    """(FROM clause, WHERE condition, parameters in order) selecting mailable subscribers as `s`, for raw SQL that
    needs keyset chunks (materialise). The FROM clause's one parameter comes before the WHERE's two."""
    subscriber, subscription = Subscriber._meta.db_table, Subscription._meta.db_table
    tables = f"{subscriber} s JOIN {subscription} m ON m.subscriber_id = s.id AND m.newsletter_id = %s"
    return tables, "s.status = %s AND m.status = %s", [newsletter_id, SUBSCRIBER_STATUS, SUBSCRIPTION_STATUS]


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
