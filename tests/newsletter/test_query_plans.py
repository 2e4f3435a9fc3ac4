"""No hot query of a send can go quadratic: PostgreSQL's plan for each one, at a ledger's size, reads deliveries,
subscribers and subscriptions only through indexes.

The queries are not copies: each test runs the real service (materialise a chunk, claim, release by claim token,
a recovery pass, a webhook's lookup by Message-ID, the suppression lookups), captures every statement it sends,
and asks PostgreSQL to EXPLAIN it. The ledger is seeded once for the module inside one transaction that is
rolled back at the end: a newsletter of 100,000 readers with three sent issues (300,000 deliveries) beside the
list being sent, with statistics fresh (ANALYZE), as after the import service's own ANALYZE. One test states the
other case: the list imported after the statistics were taken, so the planner believes it is empty.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from newsletter.delivery import delivery_for_message_id, ledger, recovery
from newsletter.delivery.outcomes import OutcomeWriter
from newsletter.models import Delivery, Issue, SendRun
from subscribers.models import Subscriber, Subscription, Suppression
from subscribers.services import suppression
from tests.factories import NewsletterFactory

OTHERS = 100_000  # readers of the other newsletter; each of its four sent issues has one delivery per reader
OTHER_ISSUES = 3
LIST = 30_000  # the list being sent
POSTGRES = "PostgreSQL (DATABASE_URL=postgres://…): these are PostgreSQL's plans"
# Partial indexes of the rows in flight only (at most workers × batch size): reading one whole is not a scan.
IN_FLIGHT = {"delivery_sending_claim", "delivery_sending_lease"}
GUARDED = {Delivery._meta.db_table, Subscriber._meta.db_table, Subscription._meta.db_table}


def make_issue(newsletter, subject: str, status: str = Issue.Status.DRAFT) -> Issue:
    """An issue with a frozen render (no templates: none of these queries renders)."""
    return Issue.objects.create(
        newsletter=newsletter, subject=subject, status=status, frozen_subject=subject, frozen_html="<p>x</p>",
        frozen_text="x", frozen_at=timezone.now(),
    )  # fmt: skip


def _seed_others(cursor) -> None:
    other = NewsletterFactory(slug="archive-weekly")
    cursor.execute(
        "INSERT INTO subscribers_subscriber (email, name, status, token, source, language, soft_bounces, "
        "created_at, updated_at) SELECT 'member' || g || '@example.net', '', 'active', md5('m' || g)::uuid, "
        "'seed', '', 0, now(), now() FROM generate_series(1, %s) g",
        [OTHERS],
    )
    cursor.execute(
        "INSERT INTO subscribers_subscription (subscriber_id, newsletter_id, status, created_at, updated_at) "
        "SELECT id, %s, 'active', now(), now() FROM subscribers_subscriber WHERE source = 'seed'",
        [other.pk],
    )
    for n in range(OTHER_ISSUES):
        issue = make_issue(other, f"Archive {n}", Issue.Status.SENT)
        cursor.execute(
            "INSERT INTO newsletter_delivery (issue_id, subscriber_id, status, attempts, claim_token, sent_at, "
            "message_id, error_code, error_text, updated_at) SELECT %s, id, 'sent', 1, "
            "md5(%s || '-' || (id / 200))::uuid, now(), '<' || %s || '.' || id || '@news.example.org>', '', '', "
            "now() FROM subscribers_subscriber WHERE source = 'seed'",
            [issue.pk, str(issue.pk), str(issue.pk)],
        )


def _seed_list(cursor, newsletter, prefix: str) -> None:
    cursor.execute(
        "INSERT INTO subscribers_subscriber (email, name, status, token, source, language, soft_bounces, "
        "created_at, updated_at) SELECT %s || g || '@example.com', 'Reader ' || g, 'active', "
        "md5(%s || g)::uuid, %s, '', 0, now(), now() FROM generate_series(1, %s) g",
        [prefix, prefix, prefix, LIST],
    )
    cursor.execute(
        "INSERT INTO subscribers_subscription (subscriber_id, newsletter_id, status, created_at, updated_at) "
        "SELECT id, %s, 'active', now(), now() FROM subscribers_subscriber WHERE source = %s",
        [newsletter.pk, prefix],
    )


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """Seeded once for the module, rolled back at its end. `issue` is mid-send: materialised, 200 rows sent, 200 in
    flight under `token` with a lease that ran out. `stale_issue`'s list was added after the last ANALYZE."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            yield None  # each test's `require` says so (and fails in CI)
            return
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            with connection.cursor() as cursor:
                _seed_others(cursor)
                newsletter = NewsletterFactory(slug="daily-brief")
                _seed_list(cursor, newsletter, "reader")
                cursor.execute("ANALYZE")
                # This list arrives after the statistics were taken: the planner thinks its newsletter is empty.
                late = NewsletterFactory(slug="late-edition")
                _seed_list(cursor, late, "late")
                stale_issue = make_issue(late, "Sent right after the import", Issue.Status.SENDING)
                issue = make_issue(newsletter, "Mid-send", Issue.Status.SENDING)
                SendRun.objects.create(issue=issue, heartbeat_at=timezone.now())
                while ledger.deliveries_materialise(issue.pk, budget_seconds=60) is not None:
                    pass
                token = uuid.uuid4()
                ids = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("id", flat=True)[:400])
                Delivery.objects.filter(id__in=ids[:200]).update(status=Delivery.Status.SENT, message_id="<sent@x>")
                Delivery.objects.filter(id__in=ids[200:]).update(
                    status=Delivery.Status.SENDING, claim_token=token, attempts=1,
                    lease_until=timezone.now() - timedelta(seconds=5),
                )  # fmt: skip
                # No ANALYZE here: the issue's rows are in the statistics because materialising analysed them.
                # Check the seed's deferred foreign keys now, once: each test's rollback to its savepoint would
                # otherwise bring the whole queue of checks back for the next test's constraint check.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            yield {"newsletter": newsletter, "issue": issue, "token": token, "stale_issue": stale_issue}
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def fresh(seeded, django_db_blocker, require) -> Iterator[dict]:
    """The seeded ledger; what the test changes is rolled back."""
    require(seeded is not None, POSTGRES)
    with django_db_blocker.unblock(), transaction.atomic():
        yield seeded
        transaction.set_rollback(True)


def _statements(action: Callable[[], object]) -> list[tuple[str, tuple]]:
    """Run `action` and return every statement it sent through Django's connection, with its parameters."""
    seen: list[tuple[str, tuple]] = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        action()
    return seen


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def assert_indexed(action: Callable[[], object], expect: str) -> None:
    """Every statement `action` runs plans with no sequential scan of a guarded table, nor an index of one read
    from end to end; at least one touches the table or index named in `expect` (so the test is looking at the
    query it means; a prefix)."""
    statements = [(sql, params) for sql, params in _statements(action) if not sql.lstrip().upper().startswith(
        ("SAVEPOINT", "RELEASE", "ROLLBACK", "SET", "SHOW", "ANALYZE"))]  # fmt: skip
    assert statements, "the action ran no query"
    scans, touched = [], set()
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            for node in _nodes(plan[0]["Plan"]):
                touched.update(filter(None, (node.get("Relation Name"), node.get("Index Name"))))
                if node.get("Relation Name") not in GUARDED:
                    continue
                if node["Node Type"] == "Seq Scan":
                    scans.append(f"Seq Scan on {node['Relation Name']} in:\n{sql}\n{params}")
                elif "Index" in node["Node Type"] and "Index Cond" not in node and node["Index Name"] not in IN_FLIGHT:
                    # An index read end to end for its order (ORDER BY … LIMIT 1 with a filter): a scan all the same.
                    scans.append(f"{node['Node Type']} of all of {node['Index Name']} in:\n{sql}\n{params}")
    assert not scans, "\n\n".join(scans)
    assert any(name.startswith(expect) for name in touched), f"{expect} not used; plans touched {sorted(touched)}"


@pytest.mark.django_db
def test_materialise_chunk_walks_the_newsletters_own_subscriptions(fresh):
    issue = make_issue(fresh["newsletter"], "Next week", Issue.Status.SENDING)
    SendRun.objects.create(issue=issue)
    assert_indexed(lambda: ledger.deliveries_materialise(issue.pk, budget_seconds=0), "subscription_nl_active")
    assert Delivery.objects.filter(issue=issue).count() == ledger.MATERIALISE_CHUNK


@pytest.mark.django_db
def test_materialise_chunk_right_after_an_import_before_any_analyse(seeded, django_db_blocker, require):
    """Statistics from before the list existed: the send's first stretch analyses, so the chunks still walk the
    right index, and every reader gets a row."""
    require(seeded is not None, POSTGRES)
    issue = seeded["stale_issue"]
    with django_db_blocker.unblock(), transaction.atomic():
        SendRun.objects.create(issue=issue)
        assert_indexed(lambda: ledger.deliveries_materialise(issue.pk, budget_seconds=0), "subscription_nl_active")
        while ledger.deliveries_materialise(issue.pk, budget_seconds=60) is not None:
            pass
        assert Delivery.objects.filter(issue=issue).count() == LIST
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_claim_walks_pending_rows_by_index(fresh):
    claim = ledger.deliveries_claim(fresh["issue"], after_id=0, limit=200)
    assert claim.claimed == 200  # the claim under test claims what it should
    issue = fresh["issue"]
    assert_indexed(lambda: ledger.deliveries_claim(issue, after_id=claim.last_id, limit=200), "delivery_pending")


@pytest.mark.django_db
def test_release_by_claim_token_reads_only_rows_in_flight(fresh):
    writer = OutcomeWriter(fresh["token"])
    assert_indexed(writer.release, "delivery_sending_")
    writer.close()
    assert not Delivery.objects.filter(claim_token=fresh["token"], status=Delivery.Status.SENDING).exists()


@pytest.mark.django_db
def test_recovery_pass_finds_expired_leases_by_index(fresh):
    report = None

    def recover():
        nonlocal report
        report = recovery.issues_recover()

    assert_indexed(recover, "delivery_sending_lease")
    assert report.leases_requeued == 200


@pytest.mark.django_db
def test_webhook_finds_the_delivery_by_message_id(fresh):
    # The seeded Message-IDs are "<issue id.subscriber id@…>"; ids depend on the tests that ran before.
    member = Subscriber.objects.get(email="member4242@example.net")
    archive = Issue.objects.get(subject="Archive 2")
    found = None

    def lookup():
        nonlocal found
        found = delivery_for_message_id(f"<{archive.pk}.{member.pk}@news.example.org>")

    assert_indexed(lookup, "delivery_message_id")
    assert found is not None and found.subscriber.email == "member4242@example.net"


@pytest.mark.django_db
def test_suppression_lookups_use_indexes(fresh):
    assert_indexed(lambda: suppression.is_suppressed("member77@example.net"), "subscribers_suppression")
    assert_indexed(
        lambda: suppression.address_suppress("Reader77@Example.com", Suppression.Reason.HARD_BOUNCE),
        "subscriber_unique_email_ci",
    )
    assert Subscriber.objects.get(email="reader77@example.com").status == Subscriber.Status.SUPPRESSED
