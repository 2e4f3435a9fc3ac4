"""The sending services called in-process against a real SMTP server: materialise, claim, send, finish, controls."""

import pytest
from django.utils import timezone

from newsletter import delivery
from newsletter.delivery import issues_recover, ledger, outcomes
from newsletter.models import Delivery, Issue, SendRun
from newsletter.services import sending
from newsletter.tasks import materialise_task, send_batch_task
from subscribers.models import Subscriber, Subscription, Suppression
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def test_materialise_takes_only_mailable_subscribers_and_twice_adds_nothing(settings, start):
    issue = issue_to_send()
    readers = subscribers_bulk(issue.newsletter, 30)
    Subscriber.objects.filter(pk=readers[0].pk).update(status=Subscriber.Status.UNSUBSCRIBED)
    Subscriber.objects.filter(pk=readers[1].pk).update(status=Subscriber.Status.SUPPRESSED)
    Subscriber.objects.filter(pk=readers[2].pk).update(status=Subscriber.Status.PENDING)
    Subscription.objects.filter(subscriber=readers[3]).update(status=Subscription.Status.UNSUBSCRIBED)
    assert sending.issue_recipient_count(issue) == 26
    start(issue)
    assert Delivery.objects.filter(issue=issue).count() == 26
    assert delivery.deliveries_materialise(issue.pk) is None
    materialise_task.run(issue.pk, 0)  # the task body, run twice: still nothing new
    assert Delivery.objects.filter(issue=issue).count() == 26
    assert sending.issue_recipient_count(issue) == 26


def test_materialise_resumes_from_a_cursor_in_chunks(monkeypatch):
    monkeypatch.setattr(ledger, "MATERIALISE_CHUNK", 7)
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 40)
    assert delivery.send_start(issue.pk)
    cursor = delivery.deliveries_materialise(issue.pk, budget_seconds=0)
    assert cursor is not None and Delivery.objects.filter(issue=issue).count() == 7
    while cursor is not None:
        cursor = delivery.deliveries_materialise(issue.pk, cursor, budget_seconds=0)
    assert Delivery.objects.filter(issue=issue).count() == 40
    assert SendRun.objects.get(pk=issue.pk).materialised_at is not None


def test_send_delivers_once_each_records_message_ids_and_finishes(
    smtp_server, settings, counts, drain, received_by_address, start
):
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_BATCH_SIZE": 25}
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 120)
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT and issue.finished_at
    assert counts(issue)["sent"] == 120
    seen = received_by_address(smtp_server)
    assert len(seen) == 120 and set(seen.values()) == {1}
    ids = set(Delivery.objects.filter(issue=issue).values_list("message_id", flat=True))
    assert len(ids) == 120 and all(i.startswith("<") for i in ids)
    first = smtp_server.to("reader0@example.com")[0].message
    assert first["Message-ID"] == Delivery.objects.get(issue=issue, subscriber__email="reader0@example.com").message_id
    # A task run again changes nothing.
    before = list(Delivery.objects.filter(issue=issue).order_by("id").values_list("status", "updated_at"))
    send_batch_task.run(issue.pk, 0)
    assert list(Delivery.objects.filter(issue=issue).order_by("id").values_list("status", "updated_at")) == before
    assert len(smtp_server.messages) == 120


def test_render_error_blocks_the_send_with_a_clear_message(settings, tmp_path):
    (tmp_path / "email" / "broken").mkdir(parents=True)
    (tmp_path / "email" / "broken" / "issue.mjml").write_text("<mjml>{% if %}</mjml>")
    (tmp_path / "email" / "broken" / "issue.txt").write_text("text")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    issue = issue_to_send()
    issue.newsletter.template = "broken"
    issue.newsletter.save()
    with pytest.raises(sending.SendError, match="does not render"):
        sending.issue_send_now(issue)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT and not issue.frozen_at


def test_claim_skips_people_who_unsubscribed_or_were_suppressed_after_materialising(
    smtp_server, counts, drain, received_by_address, start
):
    issue = issue_to_send()
    readers = subscribers_bulk(issue.newsletter, 10)
    start(issue)
    Subscription.objects.filter(subscriber=readers[0]).update(status=Subscription.Status.UNSUBSCRIBED)
    Subscriber.objects.filter(pk=readers[1].pk).update(status=Subscriber.Status.SUPPRESSED)
    readers[2].delete()  # erased: the delivery keeps its row with no subscriber
    drain(issue)
    assert counts(issue)["skipped"] == 3 and counts(issue)["sent"] == 7
    seen = received_by_address(smtp_server)
    assert not {r.email for r in readers[:3]} & set(seen)


def test_5xx_for_some_fails_them_with_the_reason_and_suppresses_hard_bounces(
    smtp_server, counts, drain, received_by_address, start
):
    bad = {"reader3@example.com": "550 5.1.1 No such user", "reader5@example.com": "554 5.7.1 Policy rejection"}
    smtp_server.rcpt_reply = lambda address: bad.get(address)
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 10)
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT
    failed = {d.subscriber.email: d for d in Delivery.objects.filter(issue=issue, status="failed")}
    assert set(failed) == set(bad)
    unknown = failed["reader3@example.com"]
    assert unknown.error_code == "550" and "No such user" in unknown.error_text
    assert Suppression.objects.count() == 1  # the unknown user, not the policy rejection
    assert Subscriber.objects.get(email="reader3@example.com").status == Subscriber.Status.SUPPRESSED
    assert Subscriber.objects.get(email="reader5@example.com").status == Subscriber.Status.ACTIVE
    assert counts(issue)["sent"] == 8 and len(received_by_address(smtp_server)) == 8


def test_4xx_defers_with_backoff_then_delivers_and_resend_to_missing(
    smtp_server, settings, counts, drain, received_by_address, start
):
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_MAX_ATTEMPTS": 2, "SEND_RETRY_BASE_SECONDS": 0}
    refusing = {"on": True}
    smtp_server.rcpt_reply = lambda address: "451 4.3.0 Try again later" if refusing["on"] else None
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 6)
    start(issue)
    delivery.deliveries_send_batch(issue.pk)
    rows = list(Delivery.objects.filter(issue=issue))
    assert {r.status for r in rows} == {"deferred"} and all(r.next_attempt_at and r.attempts == 1 for r in rows)
    assert rows[0].error_code == "451"
    delivery.deliveries_send_batch(issue.pk)  # second attempt: the cap is 2, so they fail
    drain(issue)
    assert issue.status == Issue.Status.SENT and counts(issue)["failed"] == 6
    assert "gave up after 2 attempts" in Delivery.objects.filter(issue=issue).first().error_text
    refusing["on"] = False  # the cause is fixed
    assert sending.issue_resend_missing(issue) == 6
    drain(issue)
    assert issue.status == Issue.Status.SENT and counts(issue)["sent"] == 6
    assert set(received_by_address(smtp_server).values()) == {1}
    with pytest.raises(sending.SendError, match="nobody to resend"):
        sending.issue_resend_missing(issue)


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_RETRY_BASE_SECONDS": 60, "SEND_RETRY_MAX_SECONDS": 3600}
    for attempt, base in [(1, 60), (2, 120), (3, 240), (10, 3600)]:
        values = {outcomes.backoff_seconds(attempt) for _ in range(20)}
        assert all(0.75 * base <= v <= 1.25 * base for v in values) and len(values) > 1


def test_pause_resume_cancel_controls(smtp_server, settings, counts, start):
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_BATCH_SIZE": 5}
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 20)
    start(issue)
    delivery.deliveries_send_batch(issue.pk)
    sending.issue_pause(issue)
    result = delivery.deliveries_send_batch(issue.pk)
    assert result.stopped == "not sending" and counts(issue)["sent"] == 5
    with pytest.raises(sending.SendError):
        sending.issue_pause(issue)
    sending.issue_resume(issue)
    delivery.deliveries_send_batch(issue.pk)
    assert counts(issue)["sent"] == 10
    assert sending.issue_cancel(issue) == 10
    delivery.deliveries_send_batch(issue.pk)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.CANCELLED and counts(issue) == {**counts(issue), "sent": 10, "skipped": 10}
    assert len(smtp_server.messages) == 10
    with pytest.raises(sending.SendError):
        sending.issue_resume(issue)


def test_schedule_validates_time_and_recovery_starts_it_once(smtp_server):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 3)
    with pytest.raises(sending.SendError, match="in the past"):
        sending.issue_schedule(issue, timezone.now() - timezone.timedelta(minutes=1))
    sending.issue_schedule(issue, timezone.now() + timezone.timedelta(hours=1))
    assert issue.status == Issue.Status.SCHEDULED
    assert issues_recover().started == 0
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now())
    assert issues_recover().started == 1
    assert issues_recover().started == 0
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENDING and issue.frozen_at


def test_progress_counts_by_state(start):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 4)
    progress = sending.issue_progress(issue)
    assert progress["total"] == 0 and progress["status"] == "draft"
    start(issue)
    progress = sending.issue_progress(issue)
    assert progress["total"] == 4 and progress["counts"]["pending"] == 4 and progress["percent"] == 0
