"""Faults a real newsroom hits, each reproduced against a real SMTP server (or anymail's test backend): throttling
and retries, lines over 998 octets, whole-issue refusals, lost connections, schedules, frozen sender identity,
pausing while rate-limited, issues that no longer render, and ESP refusals."""

import threading
from datetime import timedelta

import pytest
from anymail.exceptions import AnymailAPIError
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone

from newsletter import delivery
from newsletter.delivery import ratelimit
from newsletter.delivery.messages import Recipient, personalise, skeleton_build
from newsletter.models import Article, Delivery, Issue
from newsletter.services import sending
from newsletter.services.rendering import issue_render
from subscribers.models import Suppression, email_hash
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)

MAX_OCTETS = 998


@pytest.fixture
def fresh_buckets():
    """Rate-limit buckets keyed to this test's SMTP port; the store chosen again for this test's settings."""
    ratelimit._store.cache_clear()
    yield
    ratelimit._store.cache_clear()


# --- 4. retries -------------------------------------------------------------------------------------------------


def test_domain_throttling_never_counts_as_an_attempt(smtp_server, settings, start, fresh_buckets):
    # Burst 1 per domain, then one per 10 s: of four readers at example.com one goes, three wait.
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_DOMAIN_PER_MINUTE": 6, "SEND_MAX_ATTEMPTS": 2}
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 4)
    start(issue)
    result = delivery.deliveries_send_batch(issue.pk)
    assert (result.sent, result.deferred) == (1, 3)
    throttled = Delivery.objects.filter(issue=issue, status=Delivery.Status.DEFERRED)
    assert [row.attempts for row in throttled] == [0, 0, 0]
    # Throttled again, then the receiver's real 421: with a cap of two attempts the rows only defer.
    throttled.update(next_attempt_at=timezone.now())
    delivery.deliveries_send_batch(issue.pk)
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_DOMAIN_PER_MINUTE": 0}
    smtp_server.rcpt_reply = lambda address: "421 4.7.0 Try again later"
    Delivery.objects.filter(issue=issue, status=Delivery.Status.DEFERRED).update(next_attempt_at=timezone.now())
    delivery.deliveries_send_batch(issue.pk)
    rows = Delivery.objects.filter(issue=issue).exclude(status=Delivery.Status.SENT)
    assert {row.status for row in rows} == {Delivery.Status.DEFERRED}
    assert [row.attempts for row in rows] == [1, 1, 1] and all(row.error_code == "421" for row in rows)


def test_a_send_left_with_later_deferred_rows_restarts_when_the_earliest_is_due(smtp_server, settings, start):
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_LEASE_SECONDS": 120}  # the heartbeat stays fresh meanwhile
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 3)
    start(issue)
    now = timezone.now()
    soon, later = now + timedelta(seconds=30), now + timedelta(hours=1)
    rows = Delivery.objects.filter(issue=issue).order_by("id")
    rows.update(status=Delivery.Status.DEFERRED, next_attempt_at=later, attempts=1)
    Delivery.objects.filter(pk=rows.first().pk).update(next_attempt_at=soon)
    assert delivery.deliveries_send_batch(issue.pk).claimed == 0  # nothing due: the chain ends
    assert delivery.issues_recover(now=soon - timedelta(seconds=1)).kicked == 0
    assert delivery.issues_recover(now=soon + timedelta(seconds=1)).kicked == 1  # not a lease (120 s) later


# --- 5. no line over 998 octets ---------------------------------------------------------------------------------

SCRIPTS = {
    "cjk without spaces": "新聞速報市議会予算案可決" * 400,
    "arabic": "أخبار المدينة اليوم في المجلس البلدي " * 150,
    "emoji": "📰🗞️🏛️" * 700,
    "cyrillic": "Городской совет утвердил бюджет на следующий год " * 60,
}


def long_site_url(settings) -> None:
    settings.SITE_URL = "https://newsletters.harbour-city-chronicle.example.org/" + "regional-editions/" * 20


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_no_line_of_any_part_exceeds_998_octets_for_any_script_and_a_long_site_url(settings, script):
    long_site_url(settings)
    issue = issue_to_send()
    Article.objects.filter(issue_items__issue=issue).update(body_html=f"<p>{SCRIPTS[script]}</p>")
    # A line break typed into the names, and long ones (as long as the fields allow).
    issue.newsletter.name = "Daily\nBrief " + "Ж" * 180
    issue.newsletter.from_name = "The Daily\r\nBrief " + "日" * 180
    issue.newsletter.save()
    skeleton = skeleton_build(issue, issue_render(issue))
    name = 'Zoë "Ünal" <&> ' * 40
    data = personalise(skeleton, Recipient(41, "zoe@example.com", name, "6f1c1a52-8f0b-4a39-9e39-2b9b0a0c7d11")).data
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= MAX_OCTETS, max(lines, key=len)[:120]
    assert SCRIPTS[script][:8].encode() in data


def test_a_long_site_url_goes_through_a_strict_server(smtp_server, settings, start, drain):
    """aiosmtpd, like the mail catcher, answers 500 Line too long to a line over 998 octets."""
    long_site_url(settings)
    issue = issue_to_send()
    Article.objects.filter(issue_items__issue=issue).update(body_html=f"<p>{SCRIPTS['cyrillic']}</p>")
    subscribers_bulk(issue.newsletter, 5)
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 5


def test_a_refusal_of_every_message_pauses_the_issue_with_the_reason(smtp_server, start, drain, counts):
    smtp_server.data_reply = lambda: "500 Line too long"
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 12)
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.PAUSED
    assert "500" in issue.status_reason and "Line too long" in issue.status_reason
    assert counts(issue)["failed"] == 0 and counts(issue)["pending"] == 12  # nobody failed for good
    assert "Line too long" in sending.issue_progress(issue)["status_reason"]
    smtp_server.data_reply = lambda: None  # the cause is fixed
    sending.issue_resume(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT and counts(issue)["sent"] == 12 and issue.status_reason == ""


def test_a_content_refusal_of_one_message_fails_only_that_reader(smtp_server, start, drain, counts):
    refused = {"reader2@example.com"}
    current = {}
    smtp_server.rcpt_reply = lambda address: current.update(rcpt=address)
    smtp_server.data_reply = lambda: "554 5.6.0 Message refused" if current.get("rcpt") in refused else None
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 6)
    start(issue)
    drain(issue)
    assert issue.status == Issue.Status.SENT and counts(issue)["failed"] == 1 and counts(issue)["sent"] == 5


# --- 6. connection failures -------------------------------------------------------------------------------------


def test_a_failed_reconnect_mid_batch_defers_the_rest_at_once(smtp_servers, start):
    server = smtp_servers()

    def hang_up(address):
        if address == "reader1@example.com":
            server.controller.server.close()  # nobody can connect any more...
            server.session_transport.close()  # ...and this connection drops mid-transaction
        return None

    original = server.handle_RCPT

    async def handle_RCPT(smtp, session, envelope, address, rcpt_options):
        server.session_transport = smtp.transport
        return await original(smtp, session, envelope, address, rcpt_options)

    server.handle_RCPT = handle_RCPT
    server.rcpt_reply = hang_up
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 5)
    start(issue)
    result = delivery.deliveries_send_batch(issue.pk)
    assert result.stopped == "transport"
    rows = {d.subscriber.email: d for d in Delivery.objects.filter(issue=issue).select_related("subscriber")}
    assert rows["reader0@example.com"].status == Delivery.Status.SENT
    rest = [rows[f"reader{n}@example.com"] for n in range(1, 5)]
    assert {d.status for d in rest} == {Delivery.Status.DEFERRED} and all(d.next_attempt_at for d in rest)
    assert not Delivery.objects.filter(issue=issue, status=Delivery.Status.SENDING).exists()


def test_an_esp_refusing_the_api_key_pauses_the_issue_with_the_reason(settings, esp, start, counts):
    settings.EMAIL_BACKEND = esp.unauthorized
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 4)
    start(issue)
    result = delivery.deliveries_send_batch(issue.pk)
    issue.refresh_from_db()
    assert result.stopped == "paused" and issue.status == Issue.Status.PAUSED
    assert "401" in issue.status_reason
    assert counts(issue)["failed"] == 0 and counts(issue)["pending"] == 4


def test_the_unauthorized_esp_raises_what_anymail_raises(settings, esp):
    """The simulated ESP answers as anymail reports a bad API key: AnymailAPIError with status 401."""
    with pytest.raises(AnymailAPIError) as refused:
        EmailMessage("s", "b", "a@example.org", ["b@example.org"], connection=get_connection(esp.unauthorized)).send()
    assert refused.value.status_code == 401


# --- 14. ESP refusals suppress ----------------------------------------------------------------------------------


def test_an_esp_invalid_or_rejected_status_suppresses_the_address(settings, esp, start, drain):
    settings.EMAIL_BACKEND = esp.backend
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 6)
    start(issue)
    drain(issue)
    for address in esp.refuses:
        assert Suppression.objects.filter(email_hash=email_hash(address)).exists(), address
    assert Suppression.objects.count() == len(esp.refuses)


# --- 7. start exactly as scheduled; the sender identity is frozen -----------------------------------------------


def test_a_scheduled_start_rechecks_under_the_lock_that_the_issue_is_still_scheduled_and_due():
    issue = issue_to_send()
    sending.issue_schedule(issue, timezone.now() + timedelta(hours=1))
    assert not delivery.send_start(issue.pk, scheduled=True)  # not due yet
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    sending.issue_unschedule(Issue.objects.get(pk=issue.pk))  # the editor unschedules after recovery read it
    assert not delivery.send_start(issue.pk, scheduled=True)
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.DRAFT


def test_the_sender_identity_is_frozen_with_the_render(smtp_server, settings, start, drain, parse):
    settings.MAIL_DOMAIN = "news.example.org"
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 4)
    start(issue)
    newsletter = issue.newsletter  # edited mid-send, before the workers build their messages
    newsletter.from_name, newsletter.from_email, newsletter.reply_to = "Other Desk", "other@example.net", ""
    newsletter.postal_address = "Somewhere Else"
    newsletter.save()
    settings.MAIL_DOMAIN = "elsewhere.example.net"
    drain(issue)
    messages = [parse(m.data) for m in smtp_server.messages]
    assert len(messages) == 4
    assert {m["From"] for m in messages} == {"The Daily Brief <brief@news.example.org>"}
    assert {m["Reply-To"] for m in messages} == {"The Daily Brief <desk@news.example.org>"}
    assert all(m["Message-ID"].endswith("@news.example.org>") for m in messages)
    assert all("1 Press Row, Springfield" in m.get_body(("plain",)).get_content() for m in messages)


# --- 8. pause within a second while the rate limiter makes the batch wait ---------------------------------------


def test_pause_takes_effect_while_the_batch_waits_for_the_rate_limiter(smtp_server, settings, start, fresh_buckets):
    # One message now, then one a minute: the batch would wait a minute for its second token.
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_SECOND": 1 / 60, "SEND_BATCH_SECONDS": 600}
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 3)
    start(issue)
    outcome = {}
    batch = threading.Thread(target=lambda: outcome.update(result=delivery.deliveries_send_batch(issue.pk)))
    batch.start()
    while not smtp_server.messages:
        batch.join(0.05)
    sending.issue_pause(Issue.objects.get(pk=issue.pk))
    batch.join(20)  # a third of the wait: a batch that only noticed after its token would still be asleep
    assert not batch.is_alive(), "the batch kept waiting for the rate limiter after the pause"
    assert outcome["result"].stopped == "paused" and len(smtp_server.messages) == 1
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.PENDING).count() == 2


# --- 12. FAILED and the worker heartbeat ------------------------------------------------------------------------


def test_a_scheduled_issue_that_no_longer_renders_fails_with_the_reason(settings, tmp_path):
    issue = issue_to_send()
    sending.issue_schedule(issue, timezone.now() + timedelta(hours=1))
    (tmp_path / "email" / "broken").mkdir(parents=True)
    (tmp_path / "email" / "broken" / "issue.mjml").write_text("<mjml>{% if %}</mjml>")
    (tmp_path / "email" / "broken" / "issue.txt").write_text("text")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    issue.newsletter.template = "broken"
    issue.newsletter.save()
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=timezone.now())
    report = delivery.issues_recover()
    issue.refresh_from_db()
    assert report.render_failed == 1 and issue.status == Issue.Status.FAILED
    assert "does not render" in issue.status_reason and "issue.mjml" in issue.status_reason
    assert delivery.issues_recover().render_failed == 0  # it does not fail again every 15 seconds
