"""Addresses with letters outside ASCII before the @ can't be delivered by a transport without SMTPUTF8: signup and
import refuse them with a clear message, unless MASTHEAD's SMTPUTF8 setting says the transport supports it."""

import io

import pytest
from django.urls import reverse

from subscribers.models import Subscriber
from subscribers.services.importing import subscribers_import
from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newsletter():
    return NewsletterFactory(slug="daily-brief")


def signup(client, newsletter, email: str):
    data = {"email": email, "name": "", "consent": "on", "website": ""}
    return client.post(reverse("subscribers:signup", args=[newsletter.slug]), data)


def test_signup_refuses_a_non_ascii_local_part_with_a_clear_message(
    client, newsletter, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = signup(client, newsletter, "üser@example.com")
    assert response.status_code == 400
    assert "letters such as ü or ñ before the @" in response.content.decode()
    assert not Subscriber.objects.exists() and not callbacks
    assert signup(client, newsletter, "user@bücher.example").status_code == 302  # an IDN domain is fine


def test_import_refuses_a_non_ascii_local_part_and_says_why(newsletter):
    report = subscribers_import(io.StringIO("email\nüser@example.com\nok@example.com\n"), newsletter, consent_text="x")
    assert report.accepted == 1
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ok@example.com"]
    assert "outside plain English" in str(report.rejected)


def test_with_smtputf8_on_such_addresses_are_accepted(client, newsletter, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "SMTPUTF8": True}
    assert signup(client, newsletter, "üser@example.com").status_code == 302
    assert Subscriber.objects.get().email == "üser@example.com"


def test_with_smtputf8_on_the_smtp_sender_delivers_to_such_an_address(newsletter, settings, smtp_servers):
    from subscribers.services.emails import confirmation_send
    from tests.factories import SubscriberFactory

    settings.MASTHEAD = {**settings.MASTHEAD, "SMTPUTF8": True}
    server = smtp_servers(enable_SMTPUTF8=True)
    options: list[str] = []

    async def handle_MAIL(server, session, envelope, address, mail_options):
        options.extend(mail_options)
        envelope.mail_from, envelope.mail_options = address, list(mail_options)
        return "250 OK"

    server.handle_MAIL = handle_MAIL
    reader = SubscriberFactory(email="üser@example.com", status=Subscriber.Status.PENDING)
    assert confirmation_send(reader, newsletter) == "confirm"
    (received,) = server.messages
    assert received.rcpt_tos == ["üser@example.com"] and "SMTPUTF8" in options
