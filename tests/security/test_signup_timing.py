"""The signup request does the same work whatever the address: unknown, pending, subscribed, unsubscribed,
suppressed or erased. It validates the form and queues one task; the task decides what to email."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from subscribers.models import Subscriber, Suppression
from subscribers.services.privacy import subscriber_erase
from subscribers.services.suppression import address_suppress
from subscribers.tasks import signup_task
from tests.factories import NewsletterFactory, SubscriberFactory, subscribed

pytestmark = [pytest.mark.django_db, pytest.mark.signup_queued]


@pytest.fixture
def addresses():
    newsletter = NewsletterFactory(slug="daily-brief")
    subscribed(newsletter, email="active@example.com")
    SubscriberFactory(email="pending@example.com", status=Subscriber.Status.PENDING)
    SubscriberFactory(email="left@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    address_suppress("bounced@example.com", Suppression.Reason.HARD_BOUNCE, "webhook", "test")
    subscriber_erase(SubscriberFactory(email="erased@example.com"))
    return newsletter, ["unknown@example.com", "active@example.com", "pending@example.com", "left@example.com",
                        "bounced@example.com", "erased@example.com"]  # fmt: skip


def test_every_kind_of_address_costs_the_request_the_same_queries_and_one_task(
    client, addresses, django_capture_on_commit_callbacks, monkeypatch
):
    newsletter, emails = addresses
    from subscribers import dispatch

    queued: list[dict] = []
    monkeypatch.setattr(dispatch, "_enqueue", lambda name, *args: queued.append((name, *args)))
    url = reverse("subscribers:signup", args=[newsletter.slug])
    work = []
    for n, email in enumerate(emails):
        queued.clear()
        data = {"email": email, "name": "", "consent": "on", "website": ""}
        with CaptureQueriesContext(connection) as queries:
            response = client.post(url, data, REMOTE_ADDR=f"203.0.113.{n + 1}")
        assert response.status_code == 302
        assert [q[0] for q in queued] == ["subscribers.signup"] and queued[0][1]["email"] == email
        work.append([q["sql"] for q in queries.captured_queries])
    assert all(w == work[0] for w in work), "the request's queries depend on the address"
    before = Subscriber.objects.count()
    assert before == 3  # the request itself created no one


def test_the_queued_signup_decides_what_to_email(addresses, django_capture_on_commit_callbacks):
    newsletter, _ = addresses
    request = {"email": "unknown@example.com", "name": "", "newsletter_id": newsletter.pk, "consent_text": "ok",
               "policy_version": "v1", "source": "form", "ip": "", "user_agent": "", "language": "en"}  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        assert signup_task(request) == "confirmation_sent"
    assert len(callbacks) == 1  # the confirmation email
    with django_capture_on_commit_callbacks() as callbacks:
        assert signup_task({**request, "email": "bounced@example.com"}) == "refused"
    assert not callbacks
