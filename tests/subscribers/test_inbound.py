"""Mail that comes back: every fixture attributed by its signed VERP address and acted on through the bounce
services; forged tokens, auto-replies and junk change nothing but the quarantine."""

import smtplib
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from newsletter.models import Delivery, Issue
from newsletter.services.sending import issue_progress
from subscribers import links
from subscribers.models import ConsentEvent, MailEvent, QuarantinedMail, Subscriber, Subscription, Suppression
from subscribers.services.inbound import inbound_receive
from subscribers.services.inbound.quarantine import quarantine_prune
from subscribers.tokens import BadToken, Purpose, make_short_token, make_token, read_short_token
from tests.conftest import ROOT, child_env, free_port
from tests.factories import DeliveryFactory, IssueFactory, subscribed

from .inbound_helpers import BOUNCE_DOMAIN, FBL_ADDRESS, UNSUBSCRIBE_ADDRESS, fixture_bytes, inbound_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _inbound(settings):
    inbound_settings(settings)


def sent_delivery(newsletter, email="reader@example.net", issue=None) -> Delivery:
    issue = issue or IssueFactory(sending=True, newsletter=newsletter)
    reader = subscribed(newsletter, email=email)
    delivery = DeliveryFactory(issue=issue, subscriber=reader, status=Delivery.Status.SENT, sent_at=timezone.now())
    delivery.message_id = f"<{issue.public_id.hex}.{delivery.pk}@example.org>"
    delivery.save(update_fields=["message_id"])
    return delivery


def receive(name: str, delivery: Delivery, recipient: str | None = None, **kwargs):
    verp = links.bounce_address(delivery.pk)
    raw = fixture_bytes(name, verp, delivery.subscriber.email, delivery.message_id)
    return inbound_receive(raw, recipient=verp if recipient is None else recipient, **kwargs)


HARD_BOUNCES = [
    ("sendmail_dsn.eml", "5.1.1", "User unknown"),
    ("gmail_dsn.eml", "5.1.1", "does not exist"),
    ("exchange_online_ndr.eml", "5.5.0", "mailbox unavailable"),
    ("qmail.eml", "5.1.1", "no mailbox here"),
    ("exim_classic.eml", "5.1.1", "User unknown"),
    ("yahoo_bounce.eml", "554", "doesn't have a yahoo.com account"),
    ("postfix_real_dsn.eml", "5.1.1", "unknown user"),
    ("exim_real_dsn.eml", "5.0.0", "Unrouteable address"),
]


@pytest.mark.parametrize(("name", "code", "text"), HARD_BOUNCES)
def test_hard_bounces_of_every_format_suppress_their_delivery(newsletter, name, code, text):
    delivery = sent_delivery(newsletter)
    bystander = sent_delivery(newsletter, email="other@example.net", issue=delivery.issue)
    outcome = receive(name, delivery)
    assert (outcome.exit_code, outcome.action) == (0, "suppressed (hard bounce)")
    delivery.refresh_from_db()
    assert delivery.subscriber.status == Subscriber.Status.SUPPRESSED
    assert delivery.bounce_kind == Delivery.BounceKind.HARD and delivery.bounced_at
    assert delivery.bounce_code == code
    assert text in delivery.bounce_text
    assert delivery.status == Delivery.Status.SENT  # it was handed over; what came back is recorded beside
    ledger = ConsentEvent.objects.get(kind=ConsentEvent.Kind.SUPPRESS)
    assert ledger.source == ConsentEvent.Source.INBOUND and ledger.subscriber == delivery.subscriber
    event = MailEvent.objects.get()
    assert (event.esp, event.delivery, event.issue) == ("inbound", delivery, delivery.issue)
    bystander.subscriber.refresh_from_db()
    assert bystander.subscriber.status == Subscriber.Status.ACTIVE
    assert inbound_receive(fixture_bytes(name, links.bounce_address(delivery.pk), delivery.subscriber.email,
                                         delivery.message_id)).action == "already recorded"  # fmt: skip


def test_the_same_bounce_delivered_twice_is_acted_on_once(newsletter):
    delivery = sent_delivery(newsletter)
    assert receive("sendmail_dsn.eml", delivery).action == "suppressed (hard bounce)"
    assert receive("sendmail_dsn.eml", delivery).action == "already recorded"
    assert MailEvent.objects.count() == 1 and ConsentEvent.objects.count() == 1


def test_soft_bounces_count_toward_the_limit(newsletter, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "SOFT_BOUNCE_LIMIT": 2}
    first, second = sent_delivery(newsletter), None
    assert receive("gmail_over_quota.eml", first).action == "soft bounce 1"
    first.refresh_from_db()
    assert (first.bounce_kind, first.bounce_code) == (Delivery.BounceKind.SOFT, "4.2.2")
    assert first.subscriber.status == Subscriber.Status.ACTIVE
    second = DeliveryFactory(
        issue=IssueFactory(sending=True, newsletter=newsletter), subscriber=first.subscriber, status="sent"
    )
    assert receive("gmail_over_quota.eml", second).action == "suppressed after 2 soft bounces"
    assert Suppression.objects.get().reason == Suppression.Reason.SOFT_BOUNCES


def test_a_delay_notice_changes_nothing(newsletter):
    delivery = sent_delivery(newsletter)
    assert receive("delayed_dsn.eml", delivery).action == "delay notice ignored"
    delivery.refresh_from_db()
    assert not delivery.bounce_kind and not MailEvent.objects.exists() and not QuarantinedMail.objects.exists()


@pytest.mark.parametrize("name", ["yahoo_arf.eml", "microsoft_arf.eml", "microsoft_jmrp.eml"])
def test_feedback_loop_complaints_suppress_and_pause_the_issue(newsletter, settings, name):
    settings.MASTHEAD = {**settings.MASTHEAD, "COMPLAINT_PAUSE_RATE": 0.001}
    issue = IssueFactory(sending=True, newsletter=newsletter)
    delivery = sent_delivery(newsletter, issue=issue)
    for i in range(3):
        sent_delivery(newsletter, email=f"fine{i}@example.net", issue=issue)
    outcome = receive(name, delivery, recipient=FBL_ADDRESS)
    assert outcome.action == "suppressed (complaint); issue paused"
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    delivery.refresh_from_db()
    assert delivery.complained_at and delivery.subscriber.status == Subscriber.Status.SUPPRESSED


def test_bounces_and_complaints_show_in_the_issue_progress(newsletter, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "COMPLAINT_PAUSE_RATE": 1.0}
    issue = IssueFactory(sending=True, newsletter=newsletter, status=Issue.Status.SENT, finished_at=timezone.now())
    bounced = [sent_delivery(newsletter, email=f"b{i}@example.net", issue=issue) for i in range(2)]
    complained = sent_delivery(newsletter, email="c@example.net", issue=issue)
    sent_delivery(newsletter, email="fine@example.net", issue=issue)
    for delivery in bounced:
        receive("gmail_dsn.eml", delivery)
    receive("yahoo_arf.eml", complained, recipient=FBL_ADDRESS)
    counts = issue_progress(issue)["counts"]
    assert (counts["sent"], counts["bounced"], counts["complained"], counts["soft_bounced"]) == (4, 2, 1, 0)
    assert issue_progress(issue)["total"] == 4  # the bounce counts are part of "sent", not extra rows


def test_a_forged_or_altered_token_suppresses_nobody(newsletter, settings):
    delivery = sent_delivery(newsletter)
    good = links.bounce_address(delivery.pk)
    number, _, mac = good.split("@")[0].removeprefix("bounces+").partition("-")
    tampered = f"bounces+{number}-{'a' * len(mac)}@{BOUNCE_DOMAIN}"
    other_key = f"bounces+{number}-{mac[::-1]}@{BOUNCE_DOMAIN}"
    for forged in (tampered, other_key, f"bounces+{number}@{BOUNCE_DOMAIN}"):
        raw = fixture_bytes("sendmail_dsn.eml", forged, delivery.subscriber.email, delivery.message_id)
        outcome = inbound_receive(raw, recipient=forged)
        assert (outcome.exit_code, outcome.action) == (0, "quarantined")
    delivery.subscriber.refresh_from_db()
    assert delivery.subscriber.status == Subscriber.Status.ACTIVE
    assert not Suppression.objects.exists() and not MailEvent.objects.exists()
    reasons = list(QuarantinedMail.objects.values_list("reason", flat=True))
    assert len(reasons) == 3 and all("forged or damaged bounce address" in r for r in reasons)


def test_a_token_signed_with_another_secret_is_forged(newsletter, settings):
    delivery = sent_delivery(newsletter)
    settings.SECRET_KEY = "an-attackers-guess-of-the-secret-key-0123456789abcdef"
    forged = links.bounce_address(delivery.pk)
    settings.SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
    assert receive("gmail_dsn.eml", delivery, recipient=forged).action == "quarantined"
    assert not Suppression.objects.exists()


def test_a_complaint_quoting_a_real_address_without_our_token_is_quarantined(newsletter):
    delivery = sent_delivery(newsletter)
    raw = fixture_bytes("yahoo_arf.eml", "news@example.org", delivery.subscriber.email, delivery.message_id)
    outcome = inbound_receive(raw, recipient=FBL_ADDRESS)
    assert outcome.action == "quarantined" and "no signed bounce address" in outcome.detail
    assert not Suppression.objects.exists()
    row = QuarantinedMail.objects.get()
    assert row.reason.startswith("complaint not attributed") and row.envelope_recipient == FBL_ADDRESS
    assert bytes(row.raw) == raw and row.subject == "FW: The Daily Brief"


@pytest.mark.parametrize("name", ["out_of_office.eml", "outlook_automatic_reply.eml"])
def test_auto_replies_are_ignored(newsletter, name):
    delivery = sent_delivery(newsletter)
    outcome = receive(name, delivery)
    assert (outcome.exit_code, outcome.action) == (0, "auto-reply ignored")
    delivery.refresh_from_db()
    assert delivery.subscriber.status == Subscriber.Status.ACTIVE and not delivery.bounce_kind
    assert not QuarantinedMail.objects.exists() and not MailEvent.objects.exists()


def test_mail_for_an_unknown_address_is_refused_and_empty_or_oversized_mail_is_bad_data(newsletter, settings):
    delivery = sent_delivery(newsletter)
    raw = fixture_bytes("sendmail_dsn.eml", links.bounce_address(delivery.pk), delivery.subscriber.email)
    refused = inbound_receive(raw, recipient="someone@example.org")
    assert (refused.exit_code, refused.smtp_reply[:3]) == (67, "550")
    assert inbound_receive(raw, recipient="bounces+x@elsewhere.example").exit_code == 67
    assert inbound_receive(b"  \r\n", recipient=FBL_ADDRESS).exit_code == 65
    settings.MASTHEAD = {**settings.MASTHEAD, "INBOUND_MAX_BYTES": 100}
    big = inbound_receive(raw, recipient=links.bounce_address(delivery.pk))
    assert (big.exit_code, big.smtp_reply[:3]) == (65, "552")
    assert not Suppression.objects.exists()


def test_malformed_mail_is_quarantined_with_a_log_line(newsletter, caplog):
    junk = b"\x00\xff\xfe not a message at all \x80\x81\r\n\r\n\xc3\x28" * 50
    outcome = inbound_receive(junk, recipient=FBL_ADDRESS)
    assert (outcome.exit_code, outcome.action) == (0, "quarantined")
    row = QuarantinedMail.objects.get()
    assert bytes(row.raw) == junk and row.size == len(junk)
    assert any("quarantined message" in r.getMessage() for r in caplog.records)


def test_the_recipient_is_read_from_the_headers_when_the_pipe_gives_none(newsletter):
    delivery = sent_delivery(newsletter)
    assert receive("gmail_dsn.eml", delivery, recipient="").action == "suppressed (hard bounce)"


def test_a_flood_is_answered_try_later(newsletter, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "INBOUND_RATE_PER_MINUTE": 2}
    deliveries = [sent_delivery(newsletter, email=f"f{i}@example.net") for i in range(3)]
    outcomes = [receive("gmail_dsn.eml", d) for d in deliveries]
    assert [o.exit_code for o in outcomes] == [0, 0, 75]
    assert outcomes[2].smtp_reply.startswith("451")
    assert Suppression.objects.count() == 2  # the third is kept by the sender's MTA for a retry


def test_mailto_unsubscribe_records_its_own_source(newsletter):
    reader = subscribed(newsletter, email="leaving@example.net")
    token = make_token(Purpose.UNSUBSCRIBE, reader.token, newsletter.slug)
    raw = (f"From: leaving@example.net\r\nTo: {UNSUBSCRIBE_ADDRESS}\r\nSubject: unsubscribe {token}\r\n"
           "Message-ID: <u1@example.net>\r\n\r\nPlease take me off.\r\n").encode()  # fmt: skip
    assert inbound_receive(raw, recipient=UNSUBSCRIBE_ADDRESS).action == "unsubscribed"
    assert Subscription.objects.get(subscriber=reader).status == Subscription.Status.UNSUBSCRIBED
    ledger = ConsentEvent.objects.get(kind=ConsentEvent.Kind.UNSUBSCRIBE)
    assert ledger.source == ConsentEvent.Source.MAILTO and ledger.newsletter == newsletter
    assert inbound_receive(raw, recipient=UNSUBSCRIBE_ADDRESS).action == "already unsubscribed"
    # Percent-encoded as it stands in the List-Unsubscribe header, and forged tokens
    encoded = raw.replace(token.encode(), token.replace(":", "%3A").encode())
    assert inbound_receive(encoded, recipient=UNSUBSCRIBE_ADDRESS).action == "already unsubscribed"
    forged = raw.replace(token.encode(), token[:-4].encode() + b"AAAA")
    assert inbound_receive(forged, recipient=UNSUBSCRIBE_ADDRESS).action == "quarantined"
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.UNSUBSCRIBE).count() == 1


def test_a_bounce_of_a_transactional_email_is_accepted_and_ignored(newsletter):
    delivery = sent_delivery(newsletter)
    address = links.transactional_return_path()
    raw = fixture_bytes("gmail_dsn.eml", address, delivery.subscriber.email)
    assert inbound_receive(raw, recipient=address).action == "transactional bounce ignored"
    assert not Suppression.objects.exists()


def test_quarantine_is_bounded_in_size_and_age(settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "INBOUND_QUARANTINE_MAX": 3, "INBOUND_QUARANTINE_MAX_BYTES": 64}
    for i in range(6):
        inbound_receive(f"Subject: hello {i}\r\n\r\n{'x' * 200}\r\n".encode(), recipient=FBL_ADDRESS)
    assert all(len(bytes(r.raw)) == 64 and r.truncated and r.size > 200 for r in QuarantinedMail.objects.all())
    QuarantinedMail.objects.filter(subject="hello 5").update(received_at=timezone.now() - timedelta(days=31))
    quarantine_prune()
    assert sorted(QuarantinedMail.objects.values_list("subject", flat=True)) == ["hello 2", "hello 3", "hello 4"]


def test_short_tokens_round_trip_ignore_case_and_refuse_tampering(settings):
    token = make_short_token(Purpose.BOUNCE, 123456789)
    assert len(token) <= 30 and token == token.lower()
    assert read_short_token(Purpose.BOUNCE, token.upper()) == 123456789
    for bad in (token[:-1] + ("a" if token[-1] != "a" else "b"), "zz" + token, "", "123-"):
        with pytest.raises(BadToken):
            read_short_token(Purpose.BOUNCE, bad)
    old = token
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-after-rotation-0123456789abcdefghijklmnopqrstuv"
    assert read_short_token(Purpose.BOUNCE, old) == 123456789  # bounces of mail sent before a rotation


@pytest.mark.django_db(transaction=True)
def test_receive_mail_command_exit_codes(newsletter):
    delivery = sent_delivery(newsletter)
    verp = links.bounce_address(delivery.pk)
    raw = fixture_bytes("qmail.eml", verp, delivery.subscriber.email)
    env = child_env(BOUNCE_DOMAIN=BOUNCE_DOMAIN, INBOUND_ADDRESSES=FBL_ADDRESS, UNSUBSCRIBE_MAILTO=UNSUBSCRIBE_ADDRESS)

    def run(*args, data=raw):
        cmd = [sys.executable, "manage.py", "receive_mail", *args]
        return subprocess.run(cmd, input=data, capture_output=True, cwd=ROOT, env=env, timeout=60)

    unknown = run("--recipient", "nobody@example.org")
    assert unknown.returncode == 67 and b"550 5.1.1" in unknown.stderr
    accepted = run("--recipient", verp)
    assert accepted.returncode == 0, accepted.stderr
    assert b"suppressed (hard bounce)" in accepted.stdout
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == Subscriber.Status.SUPPRESSED
    assert run(data=b"").returncode == 65
    down = subprocess.run(
        [sys.executable, "manage.py", "receive_mail", "--recipient", verp],
        input=raw,
        capture_output=True,
        cwd=ROOT,
        env={**env, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"},
        timeout=60,
    )
    assert down.returncode == 75  # the database is unreachable: the MTA keeps the bounce and retries


@pytest.mark.django_db(transaction=True)
def test_inbound_smtp_server_refuses_strangers_and_survives_bad_input(newsletter):
    from subscribers.inbound_smtp import inbound_controller

    delivery = sent_delivery(newsletter)
    verp = links.bounce_address(delivery.pk)
    controller = inbound_controller("127.0.0.1", free_port(), threads=2)
    controller.start()
    try:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=30) as smtp:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                smtp.sendmail("", ["postmaster@example.org"], b"Subject: x\r\n\r\nx\r\n")
            assert refused.value.recipients["postmaster@example.org"][0] == 550
            smtp.sendmail("", [FBL_ADDRESS], b"\x00\xff garbage \x80\r\n" * 100)  # quarantined, 250
            with pytest.raises(smtplib.SMTPDataError) as too_long:
                smtp.sendmail("", [FBL_ADDRESS], b"x" * 5000)  # one line beyond RFC 5321's limit
            assert too_long.value.smtp_code == 500
            smtp.sendmail("", [verp], fixture_bytes("sendmail_dsn.eml", verp, delivery.subscriber.email))
            smtp.docmd("HELO", "\x00" * 10)  # protocol junk: answered, not fatal
        with smtplib.SMTP(controller.hostname, controller.port, timeout=30) as smtp:
            assert smtp.noop()[0] == 250  # still serving
    finally:
        controller.stop()
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == Subscriber.Status.SUPPRESSED
    assert QuarantinedMail.objects.count() == 1


def test_the_admin_shows_quarantined_mail_with_its_reason_and_the_issue_counts(client, newsletter, admin_user):
    delivery = sent_delivery(newsletter)
    receive("gmail_dsn.eml", delivery)
    inbound_receive(b"Subject: what is this\r\n\r\nhello\r\n", recipient=FBL_ADDRESS)
    client.force_login(admin_user)
    page = client.get("/admin/subscribers/quarantinedmail/").content.decode()
    assert "what is this" in page and "not a recognisable bounce" in page
    row = QuarantinedMail.objects.get()
    detail = client.get(f"/admin/subscribers/quarantinedmail/{row.pk}/change/").content.decode()
    assert "hello" in detail
    issues = client.get("/admin/newsletter/issue/").content.decode()
    assert "1 / 1 / 0" in issues  # sent / bounced / complaints
    progress = client.get(f"/admin/newsletter/issue/{delivery.issue_id}/progress/")
    assert progress.status_code == 200 and 'data-testid="count-bounced">1<' in progress.content.decode()


def test_headers_with_nul_bytes_8bit_and_encoded_words_are_stored_readably(newsletter):
    raw = (b"Subject: =?utf-8?q?caf=C3=A9?= \x00 na\xefve\r\nMessage-ID: <bad\x00id@example.net>\r\n"
           b"From: \x00\r\n\r\nbody\r\n")  # fmt: skip
    outcome = inbound_receive(raw, recipient=FBL_ADDRESS)
    assert (outcome.exit_code, outcome.action) == (0, "quarantined")
    row = QuarantinedMail.objects.get()
    assert row.subject.startswith("café") and "\x00" not in row.subject + row.message_id
