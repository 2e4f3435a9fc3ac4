"""Delivery at scale: the hot queries have an index that fits (EXPLAIN on PostgreSQL), imports leave fresh
statistics, materialise walks the newsletter's own subscriptions, and short leases live as long as their batch."""

import io
import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from newsletter import delivery
from newsletter.delivery import audience, ledger, ratelimit
from newsletter.models import Delivery, Issue
from subscribers.models import Subscriber, Subscription, Suppression, email_hash
from subscribers.services.addresses import subscribers_by_address
from subscribers.services.importing import subscribers_import
from tests.factories import NewsletterFactory, issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)

DELIVERY, SUBSCRIBER = Delivery._meta.db_table, Subscriber._meta.db_table


@pytest.fixture
def postgres(require):
    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://…)")


def plan(sql: str, params: list) -> str:
    """PostgreSQL's plan with sequential scans priced out: a Seq Scan left in it means no index can serve."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")


def queryset_plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    return plan(sql, list(params))


def assert_indexed(text: str, column: str) -> None:
    """No sequential scan of the big tables, and an index searched by `column` (not merely walked and filtered)."""
    for table in (DELIVERY, SUBSCRIBER):
        assert f"Seq Scan on {table}" not in text, text
    assert any("Index Cond" in line and column in line for line in text.splitlines()), text


def test_every_hot_query_has_an_index_that_fits(postgres):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 50)
    now = timezone.now()
    token = uuid.uuid4()
    pending = Delivery.objects.filter(issue_id=issue.pk, status=Delivery.Status.PENDING, id__gt=0).order_by("id")
    assert_indexed(queryset_plan(pending.values("id")[:200]), "issue_id")  # the claim's keyset walk
    due = Delivery.objects.filter(issue_id=issue.pk, status=Delivery.Status.DEFERRED, next_attempt_at__lte=now)
    assert_indexed(queryset_plan(due.values("id")[:200]), "issue_id")
    released = Delivery.objects.filter(claim_token=token, status=Delivery.Status.SENDING)
    # Release and renewal by claim token read only the rows in flight (the partial index on sending rows).
    assert "delivery_in_flight" in queryset_plan(released.values("id"))
    assert_indexed(queryset_plan(Delivery.objects.lease_expired(now).values("id")), "lease_until")
    by_message = Delivery.objects.filter(message_id__in=["<a.1@news.example.org>", "a.1@news.example.org"])
    assert_indexed(queryset_plan(by_message.values("id")), "message_id")  # a bounce or complaint webhook
    assert_indexed(queryset_plan(Delivery.objects.filter(subscriber_id=1).values("id")), "subscriber_id")  # withdraw
    suppressed = Suppression.objects.filter(email_hash=email_hash("x@example.com"))
    assert "Index" in queryset_plan(suppressed.values("id"))
    assert_indexed(queryset_plan(subscribers_by_address(Subscriber.objects.all(), "X@example.com")), "lower")


def test_materialise_walks_the_newsletters_own_subscriptions_by_index(postgres):
    issue = issue_to_send()
    sql = audience.mailable_sql(issue.newsletter_id)
    subscriptions, params = sql.subscriptions
    bound = plan(
        f"SELECT m.subscriber_id FROM {subscriptions} AND m.subscriber_id > %s ORDER BY m.subscriber_id "
        "LIMIT 1 OFFSET 9999",
        [*params, 0],
    )
    assert "subscription_keyset" in bound and "Seq Scan" not in bound, bound
    mailable, params = sql.mailable
    chunk = plan(
        f"SELECT m.subscriber_id FROM {mailable} AND m.subscriber_id > %s AND m.subscriber_id <= %s",
        [*params, 0, 10_000],
    )
    assert "subscription_keyset" in chunk and f"Seq Scan on {SUBSCRIBER}" not in chunk, chunk


def test_materialise_takes_only_this_newsletters_mailable_readers_among_many_others():
    issue = issue_to_send()
    other = NewsletterFactory(slug="weekend")
    subscribers_bulk(other, 30, start=1000)  # readers of another newsletter only
    mine = subscribers_bulk(issue.newsletter, 25)
    Subscription.objects.filter(subscriber=mine[0], newsletter=issue.newsletter).update(status="unsubscribed")
    Subscriber.objects.filter(pk=mine[1].pk).update(status=Subscriber.Status.SUPPRESSED)
    ledger.MATERIALISE_CHUNK, chunk = 4, ledger.MATERIALISE_CHUNK
    try:
        assert delivery.send_start(issue.pk)
        cursor, chunks = delivery.deliveries_materialise(issue.pk, budget_seconds=0), 1
        while cursor is not None:
            cursor, chunks = delivery.deliveries_materialise(issue.pk, cursor, budget_seconds=0), chunks + 1
    finally:
        ledger.MATERIALISE_CHUNK = chunk
    rows = set(Delivery.objects.filter(issue=issue).values_list("subscriber_id", flat=True))
    assert rows == {s.pk for s in mine[2:]} and chunks == 7  # 25 subscriptions in chunks of 4: the walk is theirs


def test_an_import_leaves_fresh_statistics_for_the_next_send(postgres):
    newsletter = NewsletterFactory(slug="daily-brief")
    csv = "email,name\n" + "".join(f"imported{n}@example.com,Reader {n}\n" for n in range(40))
    report = subscribers_import(io.BytesIO(csv.encode()), newsletter)
    assert report.imported == 40
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN (%s, %s)",
            [SUBSCRIBER, Subscription._meta.db_table],
        )
        analysed = dict(cursor.fetchall())
    assert set(analysed) == {SUBSCRIBER, Subscription._meta.db_table} and all(analysed.values()), analysed


def test_a_batch_that_outlives_its_short_lease_keeps_its_rows(smtp_server, settings, start, received_by_address):
    """A 2-second lease, a batch that takes about 3 seconds (4 messages a second): the batch renews its lease, so
    recovery running all along requeues nothing and nobody gets a message twice."""
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_LEASE_SECONDS": 2, "RATE_PER_SECOND": 4}
    ratelimit._store.cache_clear()
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 12)
    start(issue)
    outcome = {}
    batch = threading.Thread(target=lambda: outcome.update(result=delivery.deliveries_send_batch(issue.pk)))
    batch.start()
    requeued = 0
    while batch.is_alive():
        requeued += delivery.issues_recover().leases_requeued
        batch.join(0.2)
    ratelimit._store.cache_clear()
    assert requeued == 0 and outcome["result"].sent == 12 and not outcome["result"].stopped
    assert set(received_by_address(smtp_server).values()) == {1}
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING
