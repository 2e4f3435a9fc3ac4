"""Non-SMTP Django backends: Django's locmem and an ESP through django-anymail's test backend. One EmailMessage per
recipient, each recipient's outcome recorded (the ESP's message id when sent; its refusal as failed), and the list
headers on every message."""

import pytest
from django.core import mail

from newsletter.models import Delivery, Issue
from newsletter.services import sending
from subscribers.tokens import Purpose, read_token
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def assert_list_headers(message, readers_by_email):
    """The message is one recipient's, with RFC 2369/2919/8058 headers whose links are that recipient's."""
    (to,) = message.to
    address = to.rsplit("<", 1)[-1].rstrip(">")
    headers = message.extra_headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Id"] == "Daily Brief <daily-brief.news.example.org>"
    one_click, mailto = [part.strip().strip("<>") for part in headers["List-Unsubscribe"].split(",")]
    assert one_click.startswith("https://news.example.org/u/") and one_click.endswith("/one-click/")
    assert mailto.startswith("mailto:unsubscribe@news.example.org?subject=unsubscribe%20")
    token = read_token(Purpose.UNSUBSCRIBE, one_click.split("/u/", 1)[1].split("/", 1)[0])
    assert token.subscriber_token == str(readers_by_email[address].token)
    html = message.alternatives[0].content
    assert one_click.removesuffix("one-click/") in html and one_click.removesuffix("one-click/") in message.body
    raw = message.message().as_bytes()
    for name in (b"List-Unsubscribe:", b"List-Unsubscribe-Post:", b"List-Id:", b"Message-ID:", b"Reply-To:"):
        assert name in raw
    return address


@pytest.fixture
def mail_domain(settings):
    settings.MAIL_DOMAIN = "news.example.org"
    settings.SITE_URL = "https://news.example.org"


def test_locmem_backend_sends_one_message_per_recipient_and_records_each(settings, mail_domain, counts, drain, start):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    issue = issue_to_send()
    readers = {r.email: r for r in subscribers_bulk(issue.newsletter, 6)}
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT and counts(issue)["sent"] == 6
    assert len(mail.outbox) == 6
    recorded = dict(Delivery.objects.filter(issue=issue).values_list("subscriber__email", "message_id"))
    for message in mail.outbox:
        address = assert_list_headers(message, readers)
        # locmem has no id of its own: the recorded id is our Message-ID, the one the message carries.
        assert recorded.pop(address) == message.extra_headers["Message-ID"]
    assert recorded == {}


@pytest.mark.parametrize("ignore_status", [False, True], ids=["refusal-raises", "refusal-in-status"])
def test_anymail_backend_records_the_esps_message_id_and_its_refusals_as_failed(
    settings, mail_domain, ignore_status, esp, drain, start
):
    """anymail raises AnymailRecipientsRefused when every recipient of a message is refused (the default), or only
    reports it in anymail_status (IGNORE_RECIPIENT_STATUS): either way the recipient is failed, with the reason."""
    settings.EMAIL_BACKEND = esp.backend
    settings.ANYMAIL = {"IGNORE_RECIPIENT_STATUS": ignore_status}
    mail.outbox = []
    issue = issue_to_send()
    readers = {r.email: r for r in subscribers_bulk(issue.newsletter, 8)}
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT
    rows = {d.subscriber.email: d for d in Delivery.objects.filter(issue=issue).select_related("subscriber")}
    for email, row in rows.items():
        if email in esp.refuses:
            assert row.status == Delivery.Status.FAILED and not row.sent_at
            assert row.error_code == (esp.refuses[email] if ignore_status else "refused")
            assert esp.refuses[email] in row.error_text, row.error_text
        else:
            assert row.status == Delivery.Status.SENT and row.sent_at
            assert row.message_id == f"esp-{email}"  # the ESP's id: its webhooks report by it
    assert len(mail.outbox) == 8  # the ESP saw every message, refused ones included
    for message in mail.outbox:
        address = assert_list_headers(message, readers)
        status = message.anymail_status.recipients[address].status
        assert status == esp.refuses.get(address, "queued")


@pytest.mark.worker
def test_a_worker_process_records_per_recipient_esp_outcomes(celery_worker, mail_domain, esp, wait_for):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 8)
    celery_worker(queues="default,bulk", env={"EMAIL_BACKEND": esp.backend, "MAIL_DOMAIN": "news.example.org"})
    sending.issue_send_now(issue)

    def finished():
        issue.refresh_from_db()
        return issue.status == Issue.Status.SENT

    wait_for(finished, timeout=60, what="the issue to be sent through the ESP backend")
    rows = dict(Delivery.objects.filter(issue=issue).values_list("subscriber__email", "status"))
    assert {e for e, s in rows.items() if s == Delivery.Status.FAILED} == set(esp.refuses)
    sent = Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT)
    assert sent.count() == 6
    assert all(d.message_id == f"esp-{d.subscriber.email}" for d in sent.select_related("subscriber"))
