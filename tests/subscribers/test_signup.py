"""Signup: consent recorded, double opt-in email once per interval, no enumeration, honeypot, header safety."""

import json
import re
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression, email_hash
from subscribers.services.signup import SignupOutcome, subscriber_signup
from subscribers.tasks import confirmation_send_task
from subscribers.tokens import Purpose, read_token
from tests.factories import NewsletterFactory, SubscriberFactory, subscribed

pytestmark = pytest.mark.django_db

UA = "Mozilla/5.0 (test)"


def post_signup(client, newsletter, email="new@example.com", ip="203.0.113.7", **extra):
    data = {"email": email, "name": "Ada", "consent": "on", "website": "", **extra}
    return client.post(reverse("subscribers:signup", args=[newsletter.slug]), data, REMOTE_ADDR=ip, HTTP_USER_AGENT=UA)


def test_signup_page_has_unticked_consent_naming_policies_and_a_honeypot(client, newsletter, settings):
    html = client.get(f"/subscribe/{newsletter.slug}/").content.decode()
    assert 'name="consent"' in html and "checked" not in html
    assert settings.MASTHEAD["PRIVACY_POLICY_URL"] in html and settings.MASTHEAD["TERMS_URL"] in html
    assert 'name="website"' in html and 'aria-hidden="true"' in html
    assert "csrfmiddlewaretoken" in html
    assert '<label for="id_email">' in html


def test_signup_records_consent_and_queues_one_confirmation(client, newsletter, settings, on_commit):
    with on_commit() as callbacks:
        response = post_signup(client, newsletter, email="New.Reader@Example.COM")
    assert response.status_code == 302 and response["Location"] == f"/subscribe/{newsletter.slug}/thanks/"
    assert len(callbacks) == 1
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "New.Reader@example.com"  # domain normalised, local part as typed
    assert subscriber.status == Subscriber.Status.PENDING and subscriber.confirmation_sent_at
    assert subscriber.source == ConsentEvent.Source.FORM
    assert Subscription.objects.get().newsletter == newsletter
    event = ConsentEvent.objects.get()
    assert event.kind == ConsentEvent.Kind.SUBSCRIBE and event.source == ConsentEvent.Source.FORM
    assert event.newsletter == newsletter and event.subscriber == subscriber
    assert event.policy_version == settings.MASTHEAD["POLICY_VERSION"]
    assert settings.MASTHEAD["PRIVACY_POLICY_URL"] in event.consent_text and "Daily Brief" in event.consent_text
    assert event.ip_address == "203.0.113.0"  # truncated by default
    assert event.user_agent == UA


@pytest.mark.parametrize(
    ("mode", "expected"), [("full", "203.0.113.7"), ("truncated", "203.0.113.0"), ("hashed", "hmac:")]
)
def test_consent_ip_mode(client, newsletter, settings, mode, expected):
    settings.MASTHEAD = {**settings.MASTHEAD, "CONSENT_IP_MODE": mode}
    post_signup(client, newsletter)
    stored = ConsentEvent.objects.get().ip_address
    assert stored.startswith(expected)
    if mode == "hashed":
        assert "203.0.113" not in stored and len(stored) == 45


def test_missing_consent_is_refused_with_a_clear_message(client, newsletter):
    response = post_signup(client, newsletter, consent="")
    assert response.status_code == 400
    assert "Please tick the box to agree" in response.content.decode()
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "eve@example.com\r\nBcc: x@example.com", ""])
def test_invalid_address_is_refused(client, newsletter, bad):
    response = post_signup(client, newsletter, email=bad)
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Subscriber.objects.exists()


def test_honeypot_looks_like_success_but_does_nothing(client, newsletter, on_commit):
    with on_commit() as callbacks:
        response = post_signup(client, newsletter, website="http://spam.example")
    assert response.status_code == 302
    assert not callbacks and not Subscriber.objects.exists()


def test_no_enumeration_known_and_unknown_addresses_look_the_same(newsletter, on_commit):
    subscribed(newsletter, email="known@example.com")
    observed = []
    for email in ("known@example.com", "unknown@example.com"):
        client = Client()
        with on_commit() as callbacks:
            response = post_signup(client, newsletter, email=email)
        page = client.get(response["Location"])
        # The language switch's CSRF token is random per request, whoever asks; everything else must match.
        content = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", page.content)
        observed.append((response.status_code, response["Location"], page.status_code, content, len(callbacks)))
    assert observed[0] == observed[1]
    assert observed[0][4] == 1  # each address's owner gets exactly one email


def test_known_active_subscriber_is_not_changed_by_an_anonymous_signup(newsletter, on_commit):
    other = NewsletterFactory(slug="weekend")
    subscriber = subscribed(newsletter, email="known@example.com", name="Real Name")
    with on_commit(execute=False):
        outcome = subscriber_signup("known@example.com", "Attacker", other, "text", "v1", "form", "", "")
    subscriber.refresh_from_db()
    assert outcome == SignupOutcome.CONFIRMATION_SENT
    assert subscriber.status == Subscriber.Status.ACTIVE and subscriber.name == "Real Name"
    assert not subscriber.subscriptions.filter(newsletter=other).exists()  # only after the owner confirms
    with on_commit(execute=False):
        subscriber.confirmation_sent_at = None
        subscriber.save()
        assert subscriber_signup("known@example.com", "", newsletter, "t", "v1", "form") == SignupOutcome.REMINDER_SENT


def test_resignup_flood_resends_at_most_once_per_interval(newsletter, settings, on_commit):
    settings.MASTHEAD = {**settings.MASTHEAD, "CONFIRMATION_RESEND_INTERVAL_MINUTES": 15}
    with on_commit() as callbacks:
        outcomes = [subscriber_signup("flood@example.com", "", newsletter, "t", "v1", "form") for _ in range(25)]
    assert outcomes[0] == SignupOutcome.CONFIRMATION_SENT
    assert set(outcomes[1:]) == {SignupOutcome.THROTTLED}
    assert len(callbacks) == 1
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.SUBSCRIBE).count() == 1  # repeats add nothing
    subscriber = Subscriber.objects.get()
    subscriber.confirmation_sent_at -= timedelta(minutes=16)
    subscriber.save()
    with on_commit() as callbacks:
        outcome = subscriber_signup("FLOOD@example.com", "", newsletter, "t", "v1", "form")
    assert outcome == SignupOutcome.CONFIRMATION_SENT
    assert len(callbacks) == 1


def test_resignup_flood_through_the_form(client, newsletter, on_commit):
    with on_commit() as callbacks:
        responses = [post_signup(client, newsletter, email="flood@example.com") for _ in range(8)]
    assert {r.status_code for r in responses} == {302}
    assert len(callbacks) == 1


def test_suppressed_address_gets_the_same_page_and_nothing_is_sent(client, newsletter, on_commit):
    Suppression.objects.create(email_hash=email_hash("bounced@example.com"), reason=Suppression.Reason.HARD_BOUNCE)
    with on_commit() as callbacks:
        response = post_signup(client, newsletter, email="Bounced@Example.com")
    assert response.status_code == 302 and response["Location"].endswith("/thanks/")
    assert not callbacks and not Subscriber.objects.exists()


def test_unsubscribed_person_may_sign_up_again(newsletter, on_commit):
    subscriber = SubscriberFactory(email="back@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    with on_commit() as callbacks:
        outcome = subscriber_signup("back@example.com", "", newsletter, "t", "v1", "form")
    assert outcome == SignupOutcome.CONFIRMATION_SENT
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING and len(callbacks) == 1


def test_confirmation_email_is_real_multipart_with_a_signed_link(newsletter, smtp_server, settings):
    subscriber_signup("ada@example.com", "Ada", newsletter, "t", "v1", "form")
    subscriber = Subscriber.objects.get()
    assert confirmation_send_task(subscriber.pk, newsletter.pk) == "confirm"
    (received,) = smtp_server.messages
    msg = received.message
    assert received.rcpt_tos == ["ada@example.com"]
    assert msg["To"] == "ada@example.com"
    assert "The Newsroom" in msg["From"] and "news@example.org" in msg["From"]
    assert "Daily Brief" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    link = next(w for w in text.split() if w.startswith(settings.SITE_URL + "/confirm/"))
    assert link in html
    token = link.rstrip("/").rsplit("/", 1)[1]
    data = read_token(Purpose.CONFIRM, token)
    assert data.subscriber_token == str(subscriber.token) and data.newsletter == newsletter.slug
    # The payload is the random token and the slug: no database id, no address.
    assert json.loads(signing.b64_decode(token.split(":")[0].encode())) == [str(subscriber.token), newsletter.slug]


def test_name_with_line_breaks_cannot_inject_headers(client, newsletter, smtp_server):
    post_signup(client, newsletter, email="eve@example.com", name="Eve\r\nBcc: victim@example.net\r\nSubject: x")
    subscriber = Subscriber.objects.get()
    assert "\n" not in subscriber.name and "\r" not in subscriber.name
    confirmation_send_task(subscriber.pk, newsletter.pk)
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ["eve@example.com"]
    msg = received.message
    assert msg["Bcc"] is None and len(msg.get_all("Subject")) == 1
    assert "victim" not in str(msg["To"])


def test_confirmation_task_twice_and_for_a_vanished_subscriber(newsletter, smtp_server):
    subscriber_signup("twice@example.com", "", newsletter, "t", "v1", "form")
    subscriber = Subscriber.objects.get()
    assert confirmation_send_task(subscriber.pk, newsletter.pk) == "confirm"
    subscriber.status = Subscriber.Status.UNSUBSCRIBED
    subscriber.save()
    assert confirmation_send_task(subscriber.pk, newsletter.pk) == "none"  # opted out meanwhile: nothing sent
    assert confirmation_send_task(999999, newsletter.pk) == "gone"
    assert len(smtp_server.messages) == 1
