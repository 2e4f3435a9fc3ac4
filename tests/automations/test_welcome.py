"""Welcome emails: written like an issue, turned on per newsletter, sent to each reader once when they confirm that
newsletter, through the same delivery ledger and transports as issues."""

import pytest

from newsletter import delivery
from newsletter.models import Delivery, Issue, SendRun
from newsletter.services.sending import SendError, issue_send_now, issue_welcome_start
from subscribers.models import Subscriber
from subscribers.services.confirmation import ConfirmOutcome, subscriber_confirm
from tests.factories import SubscriberFactory, issue_to_send, issue_with_articles

pytestmark = pytest.mark.django_db


def welcome_draft(**fields) -> Issue:
    issue = issue_to_send(subject="Welcome to the Daily Brief", **fields)
    Issue.objects.filter(pk=issue.pk).update(kind=Issue.Kind.WELCOME)
    issue.refresh_from_db()
    return issue


def pending_reader(email: str = "new@example.com") -> Subscriber:
    return SubscriberFactory(email=email, status=Subscriber.Status.PENDING, confirmed_at=None)


def test_turning_a_welcome_on_freezes_it_and_keeps_it_open(django_capture_on_commit_callbacks):
    welcome = welcome_draft()
    issue_welcome_start(welcome)
    assert welcome.status == Issue.Status.SENDING and welcome.frozen_at is not None
    assert SendRun.objects.get(pk=welcome.pk).materialised_at is not None
    assert Delivery.objects.filter(issue=welcome).count() == 0
    assert delivery.send_finish(welcome.pk) is False  # a welcome never "finishes"
    with pytest.raises(SendError, match="welcome email"):
        issue_send_now(welcome)


def test_a_reader_who_confirms_gets_one_welcome_however_often_it_is_processed(django_capture_on_commit_callbacks):
    welcome = welcome_draft()
    issue_welcome_start(welcome)
    reader = pending_reader()
    with django_capture_on_commit_callbacks() as callbacks:
        assert subscriber_confirm(reader, welcome.newsletter) == ConfirmOutcome.CONFIRMED
        assert subscriber_confirm(reader, welcome.newsletter) == ConfirmOutcome.ALREADY_CONFIRMED
        assert delivery.welcome_add(reader.pk, welcome.newsletter_id) is False  # a replayed confirmation task
    assert list(Delivery.objects.filter(issue=welcome).values_list("subscriber__email", "status")) == [
        ("new@example.com", "pending")
    ]
    assert len(callbacks) == 1  # one welcome batch queued


def test_only_the_newsletter_confirmed_sends_its_welcome_and_a_new_welcome_replaces_the_old():
    first = welcome_draft()
    issue_welcome_start(first)
    second = issue_with_articles(1, newsletter=first.newsletter, subject="A better welcome")
    Issue.objects.filter(pk=second.pk).update(kind=Issue.Kind.WELCOME)
    second.refresh_from_db()
    issue_welcome_start(second)
    first.refresh_from_db()
    assert (first.status, second.status) == (Issue.Status.PAUSED, Issue.Status.SENDING)
    reader = pending_reader()
    subscriber_confirm(reader, first.newsletter)
    assert list(Delivery.objects.values_list("issue_id", flat=True)) == [second.pk]
    with pytest.raises(SendError, match="Only a draft"):
        issue_welcome_start(second)


def test_an_ordinary_issue_cannot_be_turned_on_as_a_welcome():
    with pytest.raises(SendError, match="kind"):
        issue_welcome_start(issue_to_send())


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_welcome_once_on_the_priority_queue(celery_worker, smtp_server, wait_for):
    welcome = welcome_draft()
    issue_welcome_start(welcome)
    celery_worker(queues="priority", env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)})
    reader = pending_reader("ada@example.com")
    Subscriber.objects.filter(pk=reader.pk).update(name="Ada")
    reader.refresh_from_db()
    subscriber_confirm(reader, welcome.newsletter)
    subscriber_confirm(reader, welcome.newsletter)
    wait_for(lambda: smtp_server.messages, timeout=60, what="the welcome email")
    wait_for(lambda: Delivery.objects.filter(issue=welcome, status="sent").exists(), timeout=30, what="sent row")
    [message] = smtp_server.messages
    assert message.rcpt_tos == ["ada@example.com"]
    assert message.message["Subject"] == "Welcome to the Daily Brief"
    assert "Ada" in message.message.get_body(("plain",)).get_content()  # personalised like any issue
    assert Issue.objects.get(pk=welcome.pk).status == Issue.Status.SENDING  # ready for the next reader
