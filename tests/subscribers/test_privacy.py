"""Privacy: the data export (emailed signed link → JSON), erasure, and the person's own return after erasure."""

import json

import pytest

from newsletter.models import Delivery
from subscribers.models import ConsentEvent, MailEvent, Subscriber, Suppression, email_hash
from subscribers.services.confirmation import ConfirmOutcome, subscriber_confirm
from subscribers.services.ledger import RequestMeta
from subscribers.services.privacy import subscriber_erase
from subscribers.services.signup import SignupOutcome, subscriber_signup
from subscribers.services.suppression import address_suppress
from subscribers.tasks import erase_link_send_task, export_link_send_task
from subscribers.tokens import Purpose, make_token
from tests.factories import DeliveryFactory, IssueFactory, subscribed

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(newsletter, on_commit):
    """A reader who signed up through the form, confirmed, and got one issue."""
    with on_commit():
        subscriber_signup("ada@example.com", "Ada", newsletter, "I agree", "2026-01", "form", "203.0.113.5", "UA/1")
    subscriber = Subscriber.objects.get()
    subscriber_confirm(subscriber, newsletter, meta=RequestMeta("203.0.113.5", "UA/2"))
    DeliveryFactory(
        issue=IssueFactory(sending=True, newsletter=newsletter, subject="Monday"),
        subscriber=subscriber,
        status="sent",
        error_text="250 ok for <ada@example.com>",
    )
    return subscriber


def test_export_request_emails_a_link_that_downloads_everything(
    client, reader, newsletter, smtp_server, on_commit, path_of
):
    with on_commit() as callbacks:
        response = client.post(f"/privacy/export-request/{make_token(Purpose.PREFERENCES, reader.token)}/")
    assert response.status_code == 302 and len(callbacks) == 1
    assert client.get(f"/privacy/export-request/{make_token(Purpose.PREFERENCES, reader.token)}/").status_code == 405

    assert export_link_send_task(reader.pk) == "sent"  # what the worker runs for that callback
    (received,) = smtp_server.messages
    text = received.message.get_body(("plain",)).get_content()
    link = next(w for w in text.split() if "/privacy/export/" in w)
    download = client.get(path_of(link))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert "no-store" in download["Cache-Control"]
    data = json.loads(download.content)
    assert data["subscriber"]["email"] == "ada@example.com" and data["subscriber"]["name"] == "Ada"
    assert data["subscriptions"] == [
        {
            "newsletter": "Daily Brief",
            "newsletter_slug": newsletter.slug,
            "status": "active",
            "since": data["subscriptions"][0]["since"],
            "updated_at": data["subscriptions"][0]["updated_at"],
        }
    ]
    assert [e["event"] for e in data["consent_history"]] == ["subscribe", "confirm"]
    assert data["consent_history"][0]["consent_text"] == "I agree"
    assert data["consent_history"][0]["policy_version"] == "2026-01"
    assert data["deliveries"] == [{"issue": "Monday", "newsletter": newsletter.slug, "status": "sent", "sent_at": None}]


def test_export_request_is_rate_limited_per_person(client, reader, settings):
    path = f"/privacy/export-request/{make_token(Purpose.PREFERENCES, reader.token)}/"
    codes = [client.post(path).status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]


def test_erase_asks_first_then_deletes_personal_data(
    client, reader, newsletter, preferences_path, smtp_server, on_commit, path_of
):
    MailEvent.objects.create(esp="Postmark", kind="soft_bounce", recipient="ada@example.com", description="full box")
    path = preferences_path(reader)
    preferences = client.get(path).content.decode()
    assert "/privacy/erase/" not in preferences  # the page a leaked link opens can't erase: the mailbox confirms
    with on_commit() as callbacks:
        response = client.post(f"/privacy/erase-request/{make_token(Purpose.PREFERENCES, reader.token)}/")
    assert response.status_code == 302 and len(callbacks) == 1
    assert Subscriber.objects.filter(pk=reader.pk).exists()  # asking changed nothing yet
    assert erase_link_send_task(reader.pk) == "sent"
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ["ada@example.com"]
    text = received.message.get_body(("plain",)).get_content()
    erase_link = path_of(next(w for w in text.split() if "/privacy/erase/" in w))
    page = client.get(erase_link)
    assert page.status_code == 200 and b"Yes, erase my data" in page.content
    assert Subscriber.objects.filter(pk=reader.pk).exists()  # GET changed nothing

    response = client.post(erase_link)
    assert response.status_code == 200 and b"erased" in response.content
    assert not Subscriber.objects.exists()
    assert Suppression.objects.get().email_hash == email_hash("ADA@example.com")
    assert Suppression.objects.get().reason == Suppression.Reason.ERASED
    delivery = Delivery.objects.get()
    assert delivery.subscriber is None and delivery.error_text == "" and delivery.status == "sent"
    assert MailEvent.objects.get().recipient == "" and MailEvent.objects.get().description == ""
    events = list(ConsentEvent.objects.order_by("id"))
    assert [e.kind for e in events] == ["subscribe", "confirm", "erase"]
    assert all(e.subscriber is None and e.ip_address == "" and e.user_agent == "" for e in events)
    assert events[0].consent_text == "I agree"  # the fact of consent stays; who gave it does not
    assert len({e.detail for e in events}) == 1 and email_hash("ada@example.com")[:16] in events[0].detail
    dump = json.dumps(list(ConsentEvent.objects.values()), default=str) + json.dumps(
        list(MailEvent.objects.values()), default=str
    )
    assert "ada@example.com" not in dump and "Ada" not in dump and "203.0.113" not in dump
    assert client.get(path).status_code == 410  # their old links now find nobody


def test_erased_person_may_sign_up_again_and_confirming_lifts_the_erasure(newsletter, on_commit):
    subscriber = subscribed(newsletter, email="back@example.com")
    subscriber_erase(subscriber)
    with on_commit() as callbacks:
        outcome = subscriber_signup("back@example.com", "", newsletter, "t", "v", "form")
    assert outcome == SignupOutcome.CONFIRMATION_SENT
    assert len(callbacks) == 1
    returning = Subscriber.objects.get()
    assert returning.status == Subscriber.Status.PENDING
    assert Suppression.objects.filter(reason="erased").exists()  # not lifted by merely typing the address
    assert subscriber_confirm(returning, newsletter) == ConfirmOutcome.CONFIRMED
    assert not Suppression.objects.exists()


def test_complaint_suppression_outlives_erasure(newsletter, on_commit):
    subscriber = subscribed(newsletter, email="angry@example.com")
    address_suppress("angry@example.com", Suppression.Reason.COMPLAINT, ConsentEvent.Source.WEBHOOK)
    subscriber_erase(subscriber)
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    with on_commit() as callbacks:
        assert subscriber_signup("angry@example.com", "", newsletter, "t", "v", "form") == SignupOutcome.REFUSED
    assert not callbacks and not Subscriber.objects.exists()


def test_erase_stops_an_issue_being_sent(newsletter):
    subscriber = subscribed(newsletter)
    pending = DeliveryFactory(issue=IssueFactory(sending=True, newsletter=newsletter), subscriber=subscriber)
    subscriber_erase(subscriber)
    pending.refresh_from_db()
    assert pending.status == Delivery.Status.SKIPPED and pending.subscriber is None


def test_a_leaked_preferences_link_shows_no_address_and_erases_no_one(client, reader, preferences_path):
    """Opened from another browser with no cookie, the preferences link shows a masked address, and no link on the
    page (nor a POST to it) erases anyone: the erase link only ever goes to the mailbox."""
    page = client.get(preferences_path(reader)).content.decode()
    assert "ada@example.com" not in page and "a\u2022\u2022\u2022@example.com" in page
    assert "/privacy/erase/" not in page
    client.post(f"/privacy/erase/{make_token(Purpose.PREFERENCES, reader.token)}/")  # wrong purpose: refused
    assert Subscriber.objects.filter(pk=reader.pk).exists()
