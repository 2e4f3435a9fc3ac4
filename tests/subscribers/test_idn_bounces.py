"""Hard bounces to internationalised domains are suppressed under the canonical form signup and import use.

The SMTP envelope carries the domain in its ASCII (IDNA) form, and ESPs report it so; the suppression list and
the subscriber must be found by the Unicode form every door stores.
"""

import io

import pytest

from subscribers.models import ConsentEvent, MailEvent, Subscriber, Subscription, Suppression
from subscribers.services.addresses import address_normalise
from subscribers.services.bounces import mail_event_process
from subscribers.services.importing import subscribers_import
from subscribers.services.signup import SignupOutcome, subscriber_signup
from subscribers.services.suppression import is_suppressed
from tests.factories import issue_to_send, subscribed

CANONICAL = address_normalise("Ana@BÜCHER.de")  # "Ana@bücher.de": the local part as typed, the domain in Unicode
WIRE = "Ana@xn--bcher-kva.de"


def found_everywhere_later(newsletter) -> None:
    for form in ("Ana@bücher.de", "ana@BÜCHER.DE", WIRE):
        assert is_suppressed(form), form
    for form in (WIRE, "ana@Bücher.de"):
        report = subscribers_import(io.StringIO(f"email\n{form}\n"), newsletter, consent_text="x")
        assert report.accepted == 0 and "hard-bounced" in report.rejected[0].reason, form
    assert subscriber_signup("ana@bücher.de", "", newsletter, "t", "v1", "form") == SignupOutcome.REFUSED


@pytest.mark.django_db(transaction=True)
def test_smtp_hard_bounce_to_an_idn_domain_suppresses_the_reader(smtp_server, start, drain):
    assert CANONICAL == "Ana@bücher.de"
    issue = issue_to_send()
    reader = Subscriber.objects.create(email=CANONICAL, status=Subscriber.Status.ACTIVE)
    Subscription.objects.create(subscriber=reader, newsletter=issue.newsletter, status=Subscription.Status.ACTIVE)
    smtp_server.rcpt_reply = lambda address: "550 5.1.1 no such mailbox" if "xn--" in address else None
    start(issue)
    drain(issue)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    assert ConsentEvent.objects.get(kind=ConsentEvent.Kind.SUPPRESS).subscriber == reader
    found_everywhere_later(issue.newsletter)


@pytest.mark.django_db
def test_esp_hard_bounce_reported_in_ascii_form_suppresses_the_reader(newsletter):
    reader = subscribed(newsletter, email=CANONICAL)
    event = MailEvent.objects.create(esp="postmark", recipient=WIRE, kind=MailEvent.Kind.HARD_BOUNCE)
    assert mail_event_process(event) == "suppressed (hard bounce)"
    event.refresh_from_db()
    reader.refresh_from_db()
    assert event.subscriber == reader and reader.status == Subscriber.Status.SUPPRESSED
    found_everywhere_later(newsletter)
