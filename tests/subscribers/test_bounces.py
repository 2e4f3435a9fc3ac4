"""Bounces and complaints through real, authenticated anymail webhook POSTs and anymail's tracking signal."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.utils import timezone

from newsletter.models import Delivery, Issue
from subscribers.models import ConsentEvent, MailEvent, Subscriber, Suppression, email_hash
from subscribers.services.bounces import event_kind
from subscribers.tasks import mail_event_process_task
from tests.factories import DeliveryFactory, IssueFactory, subscribed
from tests.subscribers.sns import ses_notification, signed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sns_certificates")]

SECRET = "hooks:s3cret-webhook-password"
MAILGUN_KEY = "mailgun-signing-key"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}


@pytest.fixture(autouse=True)
def anymail_secrets(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def postmark(client, record: dict, auth=AUTH):
    return client.post("/webhooks/anymail/postmark/tracking/", json.dumps(record), "application/json", **auth)


def postmark_bounce(email, message_id, kind="HardBounce", event_id=1):
    return {"RecordType": "Bounce", "ID": event_id, "Type": kind, "MessageID": message_id, "Email": email,
            "BouncedAt": "2026-11-25T10:00:00Z", "Description": "The server was unable to deliver"}  # fmt: skip


def postmark_complaint(email, message_id, event_id=99):
    return {"RecordType": "SpamComplaint", "ID": event_id, "Type": "SpamComplaint", "MessageID": message_id,
            "Email": email, "BouncedAt": "2026-11-25T10:00:00Z"}  # fmt: skip


def process_queued(callbacks) -> list[str]:
    """What the worker would do for the queued tasks: run each recorded event's task."""
    assert len(callbacks) == MailEvent.objects.filter(processed_at__isnull=True).count()
    return [
        mail_event_process_task(pk)
        for pk in MailEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)
    ]  # noqa: E501


def test_webhooks_refuse_bad_auth_and_stay_closed_until_configured(client, settings, newsletter):
    subscribed(newsletter, email="x@example.com")
    body = postmark_bounce("x@example.com", "m-1")
    assert postmark(client, body, auth={}).status_code == 400
    bad = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hooks:wrong").decode()}
    assert postmark(client, body, auth=bad).status_code == 400
    settings.ANYMAIL = {}
    assert postmark(client, body).status_code == 404  # never open to the world by default
    assert not MailEvent.objects.exists() and not Suppression.objects.exists()


def test_postmark_hard_bounce_suppresses(client, newsletter, on_commit):
    subscriber = subscribed(newsletter, email="gone@example.com")
    issue = IssueFactory(sending=True, newsletter=newsletter)
    delivery = DeliveryFactory(issue=issue, subscriber=subscriber, status="sent", message_id="pm-msg-1")
    pending = DeliveryFactory(issue=IssueFactory(sending=True, newsletter=newsletter), subscriber=subscriber)
    with on_commit() as callbacks:
        assert postmark(client, postmark_bounce("gone@example.com", "pm-msg-1")).status_code == 200
        assert postmark(client, postmark_bounce("gone@example.com", "pm-msg-1")).status_code == 200  # ESP retry
    assert MailEvent.objects.count() == 1
    assert process_queued(callbacks) == ["suppressed (hard bounce)"]
    assert mail_event_process_task(MailEvent.objects.get().pk) == "already processed"
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    assert Suppression.objects.get().email_hash == email_hash("gone@example.com")
    event = MailEvent.objects.get()
    assert event.issue == delivery.issue and event.subscriber == subscriber and event.kind == "hard_bounce"
    ledger = ConsentEvent.objects.get()
    assert ledger.kind == "suppress" and ledger.source == "webhook" and "Postmark" in ledger.detail
    pending.refresh_from_db()
    assert pending.status == Delivery.Status.SKIPPED  # the send underway stops for them


def test_soft_bounces_suppress_after_the_limit(client, newsletter, settings, on_commit):
    settings.MASTHEAD = {**settings.MASTHEAD, "SOFT_BOUNCE_LIMIT": 3}
    subscriber = subscribed(newsletter, email="full@example.com")
    outcomes = []
    for n in (1, 2, 2, 3):  # event 2 is delivered twice: counted once
        with on_commit() as callbacks:
            postmark(client, postmark_bounce("full@example.com", f"m-{n}", "SoftBounce", event_id=n))
        outcomes += process_queued(callbacks)
        subscriber.refresh_from_db()
    assert outcomes == ["soft bounce 1", "soft bounce 2", "suppressed after 3 soft bounces"]
    assert subscriber.status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.get().reason == Suppression.Reason.SOFT_BOUNCES


def test_complaint_suppresses_and_pauses_an_issue_over_the_threshold(client, newsletter, settings, on_commit):
    settings.MASTHEAD = {**settings.MASTHEAD, "COMPLAINT_PAUSE_RATE": 0.001}
    issue = IssueFactory(sending=True, newsletter=newsletter)
    readers = [subscribed(newsletter, email=f"r{i}@example.com") for i in range(20)]
    for i, reader in enumerate(readers[:10]):
        DeliveryFactory(issue=issue, subscriber=reader, status="sent", message_id=f"<issue-msg-{i}@example.org>")
    for reader in readers[10:]:
        DeliveryFactory(issue=issue, subscriber=reader)
    with on_commit() as callbacks:
        assert postmark(client, postmark_complaint("r3@example.com", "<issue-msg-3@example.org>")).status_code == 200
    assert process_queued(callbacks) == ["suppressed (complaint); issue paused"]
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED  # 1 of 10 sent is far above 0.1 %
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    assert Subscriber.objects.get(email="r3@example.com").status == Subscriber.Status.SUPPRESSED


def test_a_complaint_under_the_threshold_does_not_pause(client, newsletter, settings, on_commit):
    settings.MASTHEAD = {**settings.MASTHEAD, "COMPLAINT_PAUSE_RATE": 0.2}
    issue = IssueFactory(sending=True, newsletter=newsletter)
    for i in range(10):
        DeliveryFactory(issue=issue, subscriber=subscribed(newsletter), status="sent", message_id=f"m{i}")
    with on_commit() as callbacks:
        postmark(client, postmark_complaint(Delivery.objects.get(message_id="m1").subscriber.email, "m1"))
    assert process_queued(callbacks) == ["suppressed (complaint)"]
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENDING


def test_mailgun_signed_complaint(client, newsletter, on_commit):
    subscribed(newsletter, email="mg@example.com")
    timestamp, token = str(int(time.time())), "a-unique-mailgun-token-0001"
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {"event": "complained", "recipient": "mg@example.com", "timestamp": float(timestamp) - 5,
                       "message": {"headers": {"message-id": "mg-1@example.org"}}},
    }  # fmt: skip
    url = "/webhooks/anymail/mailgun/tracking/"
    forged = {**payload, "signature": {**payload["signature"], "signature": "0" * 64}}
    assert client.post(url, json.dumps(forged), "application/json", **AUTH).status_code == 400
    with on_commit() as callbacks:
        assert client.post(url, json.dumps(payload), "application/json", **AUTH).status_code == 200
    assert process_queued(callbacks) == ["suppressed (complaint)"]
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT


def test_amazon_ses_transient_bounce_is_soft_and_permanent_is_hard(client, newsletter, on_commit):
    subscribed(newsletter, email="ses@example.com")

    def ses(bounce_type: str, sns_id: str):
        message = {"notificationType": "Bounce", "mail": {"messageId": "ses-1", "destination": ["ses@example.com"]},
                   "bounce": {"bounceType": bounce_type, "bounceSubType": "General",
                              "bouncedRecipients": [{"emailAddress": "ses@example.com"}]}}  # fmt: skip
        body = signed(ses_notification(message, sns_id))
        headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id, **AUTH}
        return client.post("/webhooks/anymail/amazon_ses/tracking/", json.dumps(body), "text/plain", **headers)

    with on_commit() as callbacks:
        assert ses("Transient", "sns-1").status_code == 200
    assert process_queued(callbacks) == ["soft bounce 1"]
    with on_commit() as callbacks:
        assert ses("Permanent", "sns-2").status_code == 200
    assert process_queued(callbacks) == ["suppressed (hard bounce)"]


@pytest.mark.parametrize(
    ("esp", "event_type", "raw", "reject", "expected"),
    [
        ("SendGrid", EventType.BOUNCED, {"type": "bounce"}, None, "hard_bounce"),
        ("SendGrid", EventType.BOUNCED, {"type": "blocked"}, None, "soft_bounce"),
        ("SendGrid", EventType.COMPLAINED, {}, None, "complaint"),
        ("SendGrid", EventType.DEFERRED, {}, None, None),
        ("SendGrid", EventType.REJECTED, {}, RejectReason.BOUNCED, "hard_bounce"),
        ("Postmark", EventType.BOUNCED, {"Type": "SoftBounce"}, None, "soft_bounce"),
        ("Postmark", EventType.DELIVERED, {}, None, None),
        ("Mailgun", EventType.UNSUBSCRIBED, {}, None, "unsubscribe"),
        ("Amazon SES", EventType.BOUNCED, {"bounce": {"bounceType": "Undetermined"}}, None, "soft_bounce"),
    ],
)
def test_event_classification(esp, event_type, raw, reject, expected):
    event = AnymailTrackingEvent(event_type=event_type, esp_event=raw, reject_reason=reject, recipient="a@b.example")
    assert event_kind(event, esp) == expected


@pytest.mark.worker
def test_complaint_webhook_processed_by_a_real_worker_pauses_the_issue(
    client, newsletter, settings, celery_worker, on_commit, wait_for
):
    settings.MASTHEAD = {**settings.MASTHEAD, "COMPLAINT_PAUSE_RATE": 0.001}
    issue = IssueFactory(sending=True, newsletter=newsletter)
    reader = subscribed(newsletter, email="angry@example.com")
    DeliveryFactory(issue=issue, subscriber=reader, status="sent", message_id="w-1")
    worker = celery_worker(queues="priority")
    assert postmark(client, postmark_complaint("angry@example.com", "w-1")).status_code == 200
    # The pause commits after the event is marked processed, so wait for the pause itself.
    wait_for(lambda: Issue.objects.filter(pk=issue.pk, status=Issue.Status.PAUSED).exists(), what="the pause")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    assert MailEvent.objects.get().processed_at is not None
    assert "subscribers.process_mail_event" in worker.output()


def test_a_multi_recipient_ses_bounce_suppresses_every_recipient(client, newsletter, on_commit):
    issue = IssueFactory(sending=True, newsletter=newsletter)
    readers = [subscribed(newsletter, email=f"ses{i}@example.com") for i in range(3)]
    for reader in readers:
        DeliveryFactory(issue=issue, subscriber=reader, status="sent", message_id="ses-multi-1")
    message = {"notificationType": "Bounce", "mail": {"messageId": "ses-multi-1",
                                                      "destination": [r.email for r in readers]},
               "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                          "bouncedRecipients": [{"emailAddress": r.email} for r in readers[:2]]}}  # fmt: skip
    body = signed(ses_notification(message, "sns-multi"))
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": "sns-multi", **AUTH}
    url = "/webhooks/anymail/amazon_ses/tracking/"
    with on_commit() as callbacks:
        assert client.post(url, json.dumps(body), "text/plain", **headers).status_code == 200
        assert client.post(url, json.dumps(body), "text/plain", **headers).status_code == 200  # SNS retry
    assert process_queued(callbacks) == ["suppressed (hard bounce)", "suppressed (hard bounce)"]
    statuses = [Subscriber.objects.get(pk=r.pk).status for r in readers]
    assert statuses == [Subscriber.Status.SUPPRESSED, Subscriber.Status.SUPPRESSED, Subscriber.Status.ACTIVE]


def test_webhook_bounces_and_complaints_show_on_the_delivery_and_in_the_issue_counts(
    client, newsletter, settings, on_commit
):
    from newsletter.services.sending import issue_progress

    settings.MASTHEAD = {**settings.MASTHEAD, "COMPLAINT_PAUSE_RATE": 1.0}
    issue = IssueFactory(sending=True, newsletter=newsletter, status=Issue.Status.SENT, finished_at=timezone.now())
    readers = [subscribed(newsletter, email=f"c{i}@example.com") for i in range(5)]
    deliveries = [
        DeliveryFactory(issue=issue, subscriber=r, status="sent", message_id=f"pm-{i}") for i, r in enumerate(readers)
    ]
    with on_commit() as callbacks:
        postmark(client, postmark_bounce("c0@example.com", "pm-0", event_id=10))
        postmark(client, postmark_bounce("c1@example.com", "pm-1", "SoftBounce", event_id=11))
        postmark(client, postmark_complaint("c2@example.com", "pm-2", event_id=12))
    process_queued(callbacks)
    hard, soft, complained = (Delivery.objects.get(pk=d.pk) for d in deliveries[:3])
    assert hard.bounce_kind == "hard" and hard.bounced_at and "unable to deliver" in hard.bounce_text
    assert soft.bounce_kind == "soft"
    assert complained.complained_at and not complained.bounce_kind
    counts = issue_progress(issue)["counts"]
    assert (counts["sent"], counts["bounced"], counts["soft_bounced"], counts["complained"]) == (5, 1, 1, 1)


def _ses_post(client, message: dict, sns_id: str):
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id, **AUTH}
    body = signed(ses_notification(message, sns_id))
    return client.post("/webhooks/anymail/amazon_ses/tracking/", json.dumps(body), "text/plain", **headers)


def test_a_multi_recipient_ses_bounce_lands_on_each_recipients_own_delivery(client, newsletter, on_commit):
    from newsletter.services.sending import issue_progress

    issue = IssueFactory(sending=True, newsletter=newsletter)
    readers = [subscribed(newsletter, email=f"m{i}@example.com") for i in range(3)]
    rows = [DeliveryFactory(issue=issue, subscriber=r, status="sent", message_id="ses-shared") for r in readers]
    message = {"notificationType": "Bounce",
               "mail": {"messageId": "ses-shared", "destination": [r.email for r in readers]},
               "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                          "bouncedRecipients": [{"emailAddress": r.email} for r in readers[1:]]}}  # fmt: skip
    with on_commit() as callbacks:
        assert _ses_post(client, message, "sns-shared").status_code == 200
    process_queued(callbacks)
    kinds = [Delivery.objects.get(pk=row.pk).bounce_kind for row in rows]
    assert kinds == ["", "hard", "hard"]
    assert set(MailEvent.objects.values_list("delivery_id", flat=True)) == {rows[1].pk, rows[2].pk}
    assert issue_progress(issue)["counts"]["bounced"] == 2


def test_an_ses_event_for_mail_sent_through_its_smtp_relay_finds_the_delivery_by_our_message_id(
    client, newsletter, on_commit
):
    """Sent over SMTP, the delivery holds our Message-ID; SES reports its own id, and ours among the headers."""
    from newsletter.services.sending import issue_progress

    issue = IssueFactory(sending=True, newsletter=newsletter)
    bounced, complained = (subscribed(newsletter, email=f"r{i}@example.com") for i in range(2))
    ours = [f"<{issue.public_id.hex}.{n}@news.example.org>" for n in (1, 2)]
    rows = [
        DeliveryFactory(issue=issue, subscriber=s, status="sent", message_id=m)
        for s, m in zip((bounced, complained), ours, strict=True)
    ]
    bounce = {"notificationType": "Bounce",
              "mail": {"messageId": "0102-ses-own-1", "destination": [bounced.email],
                       "commonHeaders": {"messageId": ours[0]}},
              "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                         "bouncedRecipients": [{"emailAddress": bounced.email}]}}  # fmt: skip
    complaint = {"notificationType": "Complaint",
                 "mail": {"messageId": "0102-ses-own-2", "destination": [complained.email],
                          "headers": [{"name": "Message-ID", "value": ours[1]}]},
                 "complaint": {"complainedRecipients": [{"emailAddress": complained.email}]}}  # fmt: skip
    with on_commit() as callbacks:
        assert _ses_post(client, bounce, "sns-r1").status_code == 200
        assert _ses_post(client, complaint, "sns-r2").status_code == 200
    process_queued(callbacks)
    assert Delivery.objects.get(pk=rows[0].pk).bounce_kind == "hard"
    assert Delivery.objects.get(pk=rows[1].pk).complained_at is not None
    counts = issue_progress(issue)["counts"]
    assert (counts["bounced"], counts["complained"]) == (1, 1)
