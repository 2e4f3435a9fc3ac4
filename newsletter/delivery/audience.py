"""Who may be mailed an issue: one definition, from which the materialise SQL, the claim's re-check and the ORM
count are all built.

A subscriber is mailable for a newsletter when they exist (not erased), their own status is active (confirmed,
not unsubscribed from everything, not suppressed) and their subscription to that newsletter is active. The
suppression list needs no test of its own: suppressing an address sets its subscriber's status.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from newsletter.delivery.segments import Rules, rules_q, rules_sql, segment_rules
from newsletter.models import Issue
from subscribers.models import Subscriber, Subscription

SUBSCRIBER_STATUS = Subscriber.Status.ACTIVE
SUBSCRIPTION_STATUS = Subscription.Status.ACTIVE


def mailable_subscribers(newsletter_id: int, rules: Rules | None = None) -> QuerySet[Subscriber]:
    """The newsletter's mailable subscribers, within a segment's `rules` when given (counts before a send is
    materialised)."""
    mailable = Subscriber.objects.filter(
        status=SUBSCRIBER_STATUS,
        subscriptions__newsletter_id=newsletter_id,
        subscriptions__status=SUBSCRIPTION_STATUS,
    )
    return mailable.filter(rules_q(rules)) if rules else mailable


def subscribed_ids_sql(newsletter_id: int, after_id: int, limit: int) -> tuple[str, list]:
    """(SQL, parameters) for the next `limit` ids, in order, of subscribers with an active subscription to the
    newsletter after subscriber id `after_id`: materialise's keyset chunk. It walks the partial index
    subscription_nl_active (newsletter, subscriber) where active, so its cost is the chunk's, never the list's or
    the table's."""
    subscription = Subscription._meta.db_table
    sql = (
        f"SELECT subscriber_id FROM {subscription} WHERE newsletter_id = %s AND status = %s AND subscriber_id > %s "
        "ORDER BY subscriber_id LIMIT %s"
    )
    return sql, [newsletter_id, SUBSCRIPTION_STATUS, after_id, limit]


def mailable_among_sql(subscriber_ids: list[int], postgres: bool, rules: Rules | None = None) -> tuple[str, str, list]:
    """(FROM clause, WHERE condition, parameters) selecting as `s` those of `subscriber_ids` (all subscribed: from
    subscribed_ids_sql) whose own status lets them be mailed, within a segment's `rules` when given. By primary
    key: `= ANY(array)` on PostgreSQL, an IN list on SQLite (no arrays; looked up by primary key just the same)."""
    members = "= ANY(%s)" if postgres else f"IN ({', '.join(['%s'] * len(subscriber_ids))})"
    params = [subscriber_ids] if postgres else list(subscriber_ids)
    segment, segment_params = rules_sql(rules or {}, "s")
    return (
        f"{Subscriber._meta.db_table} s",
        f"s.id {members} AND s.status = %s{segment}",
        [*params, SUBSCRIBER_STATUS, *segment_params],
    )


def issue_rules(issue: Issue) -> Rules:
    """Who the issue is for: the rules frozen when its send started, else its segment's rules as they are now."""
    if issue.status in (Issue.Status.DRAFT, Issue.Status.SCHEDULED):
        return segment_rules(issue.segment)
    return issue.audience


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
