"""Outgoing webhooks: the outbox written with each change, Standard Webhooks signatures checked by the
`standardwebhooks` library in a real HTTP receiver, retries with the same webhook-id, disabling, the SSRF guard,
and the admin's delivery log and replay button."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.webhooks.delivery import backoff_seconds, endpoint_rotate_secret, webhook_deliver, webhooks_dispatch
from api.webhooks.outbox import events_record
from newsletter.services.sending import issue_pause, issue_resume
from subscribers.models import MailEvent, Subscriber
from subscribers.services.bounces import mail_event_process
from subscribers.services.confirmation import subscriber_confirm
from subscribers.services.privacy import subscriber_erase
from subscribers.services.signup import subscriber_signup
from subscribers.services.unsubscribe import subscriber_unsubscribe
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db

SIGNUP = {"email": "reader@example.com", "newsletter": "daily-brief", "consent_text": "Yes, the Daily Brief."}


def endpoint_for(receiver, **fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=receiver.url, **fields)


def deliver_all() -> list[str]:
    return [webhook_deliver(pk) for pk in WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True)]


def make_due() -> None:
    WebhookDelivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())


def test_signed_delivery_verifies_with_the_standardwebhooks_library(receiver, admin_api, newsletter):
    endpoint = endpoint_for(receiver)
    assert admin_api.call("POST", "/subscribers/", SIGNUP).status_code == 202
    event = WebhookEvent.objects.get()
    assert event.type == "subscriber.created"

    assert deliver_all() == ["delivered (200)"]
    [request] = receiver.requests
    assert request.headers["webhook-id"] == event.msg_id and request.headers["content-type"] == "application/json"
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "subscriber.created" and payload["data"]["email"] == "reader@example.com"
    assert payload["data"]["status"] == "pending" and payload["data"]["newsletter"] == "daily-brief"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(request.body, request.headers)  # another secret
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(request.body.replace(b"reader", b"writer"), request.headers)  # tampered
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.last_status_code == 200
    assert webhook_deliver(delivery.pk) == "not due" and len(receiver.requests) == 1  # a second run sends nothing


def test_secret_rotation_signs_with_both_secrets(receiver):
    endpoint = endpoint_for(receiver)
    old = endpoint.secret
    new = endpoint_rotate_secret(endpoint)
    events_record("issue.sent", {"id": 1})
    deliver_all()
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_until=timezone.now() - timedelta(seconds=1))
    events_record("issue.sent", {"id": 2})
    deliver_all()
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(receiver.requests[-1].body, receiver.requests[-1].headers)


def test_failures_are_retried_with_backoff_and_the_same_id_and_body(receiver):
    endpoint_for(receiver)
    receiver.statuses = [500, 503]
    events_record("issue.paused", {"id": 7, "reason": "complaints"})
    before = timezone.now()
    assert deliver_all()[0].startswith("failed")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code == 500
    assert delivery.next_attempt_at > before + timedelta(seconds=20)  # base 30 s, -25 % jitter at most
    assert deliver_all() == ["not due"]  # not before its time

    make_due()
    assert deliver_all()[0].startswith("failed")
    make_due()
    assert deliver_all() == ["delivered (200)"]
    assert len(set(receiver.ids())) == 1 and len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    log = list(WebhookAttempt.objects.order_by("number").values_list("number", "status_code"))
    assert log == [(1, 500), (2, 503), (3, 200)]
    assert WebhookEndpoint.objects.get().failing_since is None  # a success clears the failing streak


def test_backoff_is_exponential_with_jitter_for_about_three_days(settings):
    for attempts in range(1, 8):
        delay = backoff_seconds(attempts)
        assert 30 * 2 ** (attempts - 1) * 0.75 <= delay <= 30 * 2 ** (attempts - 1) * 1.25
    assert backoff_seconds(30) <= 6 * 3600 * 1.25  # capped
    # The nominal schedule (no jitter) runs out of the 72-hour window after about three days of retries.
    elapsed, attempts = 0.0, 0
    while elapsed + min(30 * 2 ** max(0, attempts - 1), 6 * 3600) <= 72 * 3600:
        attempts += 1
        elapsed += min(30 * 2 ** max(0, attempts - 1), 6 * 3600)
    assert 60 * 3600 < elapsed <= 72 * 3600 and 15 <= attempts <= 25


def test_gives_up_after_the_retry_window(receiver):
    endpoint_for(receiver)
    receiver.statuses = [500]
    events_record("issue.sent", {"id": 1})
    WebhookEvent.objects.update(created_at=timezone.now() - timedelta(hours=72))
    assert deliver_all()[0].startswith("gave up")
    assert WebhookDelivery.objects.get().status == "failed"


def test_410_disables_the_endpoint_with_an_admin_notice(receiver, admin_client):
    endpoint = endpoint_for(receiver)
    receiver.statuses = [410]
    events_record("issue.sent", {"id": 1})
    assert deliver_all() == ["410: endpoint disabled"]
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "410" in endpoint.disabled_reason
    events_record("issue.sent", {"id": 2})
    assert WebhookEvent.objects.count() == 1  # nobody listens any more: nothing is written

    page = admin_client.get(reverse("admin:api_webhookendpoint_changelist"))
    assert "are disabled since" in page.content.decode() and "410" in page.content.decode()

    response = admin_client.post(
        reverse("admin:api_webhookendpoint_changelist"),
        {"action": "enable_selected", "_selected_action": [endpoint.pk]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_reason == ""


def test_sustained_failure_disables_the_endpoint(receiver):
    endpoint = endpoint_for(receiver, failing_since=timezone.now() - timedelta(hours=73))
    receiver.statuses = [502]
    events_record("issue.sent", {"id": 1})
    deliver_all()
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "Every attempt failed since" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().status == "pending"  # kept: re-enabling sends it
    make_due()
    assert deliver_all() == ["endpoint disabled"]  # a disabled endpoint gets nothing
    assert receiver.requests[-1:] and len(receiver.requests) == 1 and WebhookDelivery.objects.get().attempts == 1


def test_private_addresses_are_refused_by_the_ssrf_guard(receiver, settings, admin_client):
    endpoint_for(receiver)
    settings.MASTHEAD = {**settings.MASTHEAD, "WEBHOOK_ALLOW_PRIVATE_URLS": False}
    events_record("issue.sent", {"id": 1})
    assert deliver_all()[0].startswith("failed")
    delivery = WebhookDelivery.objects.get()
    assert "refused" in delivery.last_error and "loopback" in delivery.last_error
    assert receiver.requests == []

    response = admin_client.post(
        reverse("admin:api_webhookendpoint_add"), {"url": "http://169.254.169.254/latest/meta-data", "description": ""}
    )
    assert response.status_code == 200 and "link-local" in response.content.decode()
    assert WebhookEndpoint.objects.count() == 1


def test_events_are_written_in_the_changes_transaction(receiver, newsletter):
    endpoint_for(receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        subscriber_signup("x@example.com", "", newsletter, "consent", "v1", "api")
        assert WebhookEvent.objects.count() == 1
        raise RuntimeError("the change is rolled back")
    assert WebhookEvent.objects.count() == 0 and Subscriber.objects.count() == 0


def test_an_endpoint_gets_only_the_types_it_asked_for(receiver, newsletter):
    endpoint_for(receiver, event_types=["subscriber.confirmed"])
    subscriber_signup("x@example.com", "", newsletter, "consent", "v1", "api")
    assert WebhookEvent.objects.count() == 0
    subscriber_confirm(Subscriber.objects.get(), newsletter)
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["subscriber.confirmed"]


def test_subscriber_lifecycle_events_and_erasure_forgets_the_address(receiver, newsletter):
    endpoint_for(receiver)
    subscriber_signup("Forget.Me@example.com", "Forget Me", newsletter, "consent", "v1", "api")
    person = Subscriber.objects.get()
    subscriber_confirm(person, newsletter)
    subscriber_unsubscribe(person, newsletter, source="api")
    digest = subscriber_erase(person, source="api")
    types = list(WebhookEvent.objects.order_by("id").values_list("type", flat=True))
    assert types == ["subscriber.created", "subscriber.confirmed", "subscriber.unsubscribed", "subscriber.erased"]
    erased = json.loads(WebhookEvent.objects.get(type="subscriber.erased").body)["data"]
    assert erased == {"id": person.pk, "email_hash": digest}
    assert not WebhookEvent.objects.filter(body__icontains="forget").exists()  # earlier events blanked too

    deliver_all()
    assert len(receiver.requests) == 4 and all(b"forget" not in r.body.lower() for r in receiver.requests)


def test_bounce_and_complaint_events_from_esp_reports(receiver, newsletter):
    endpoint_for(receiver)
    bounced, complained = subscribers_bulk(newsletter, 2)
    for person, kind in ((bounced, "hard_bounce"), (complained, "complaint")):
        mail_event_process(MailEvent.objects.create(esp="postmark", recipient=person.email, kind=kind))
    events = {e.type: json.loads(e.body)["data"] for e in WebhookEvent.objects.all()}
    assert events["delivery.bounced"]["email"] == bounced.email and events["delivery.bounced"]["kind"] == "hard"
    assert events["delivery.complained"]["email"] == complained.email
    assert events["delivery.complained"]["subscriber_id"] == complained.pk


def test_admin_shows_the_delivery_log_and_replays_with_the_same_id(receiver, admin_client):
    endpoint_for(receiver)
    events_record("issue.sent", {"id": 1})
    deliver_all()
    delivery = WebhookDelivery.objects.get()
    page = admin_client.get(reverse("admin:api_webhookdelivery_change", args=[delivery.pk]))
    html = page.content.decode()
    assert "Delivery log" in html and "Replay" in html and delivery.event.msg_id in html

    assert admin_client.get(reverse("admin:api_webhookdelivery_replay", args=[delivery.pk])).status_code == 405
    response = admin_client.post(reverse("admin:api_webhookdelivery_replay", args=[delivery.pk]))
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    deliver_all()
    assert receiver.ids() == [delivery.event.msg_id] * 2


def test_dispatch_queues_due_and_abandoned_deliveries_only(receiver):
    endpoint_for(receiver)
    for n in range(3):
        events_record("issue.sent", {"id": n})
    first, second, third = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    # A worker died holding the second one: its lease has expired.
    WebhookDelivery.objects.filter(pk=second.pk).update(status="delivering", lease_until=timezone.now())
    WebhookDelivery.objects.filter(pk=third.pk).update(status="delivered")
    # Their first tasks were queued when they were recorded: nothing is queued twice within a lease.
    assert webhooks_dispatch() == 0
    WebhookDelivery.objects.update(queued_at=timezone.now() - timedelta(minutes=2))
    assert webhooks_dispatch() == 1
    assert webhooks_dispatch() == 0  # just queued
    assert WebhookDelivery.objects.get(pk=second.pk).queued_at > timezone.now() - timedelta(seconds=5)


@pytest.mark.django_db(transaction=True)
def test_a_hard_bounce_from_our_smtp_client_is_an_event(receiver, smtp_server, start, drain):
    endpoint_for(receiver, event_types=["delivery.bounced"])
    issue = issue_to_send()
    good, bad = subscribers_bulk(issue.newsletter, 2)
    smtp_server.rcpt_reply = lambda address: "550 5.1.1 No such user" if address == bad.email else None
    start(issue)
    drain(issue)
    [event] = WebhookEvent.objects.all()
    data = json.loads(event.body)["data"]
    assert data["source"] == "smtp" and data["email"] == bad.email and data["issue_id"] == issue.pk
    assert "550" in data["description"]


@pytest.mark.django_db(transaction=True)
def test_issue_events(receiver, newsletter, smtp_server, start, drain):
    endpoint_for(receiver)
    issue = issue_to_send(newsletter)
    subscribers_bulk(newsletter, 1)
    start(issue)
    issue_pause(issue, reason="complaints")
    issue_resume(issue)
    drain(issue)
    types = list(WebhookEvent.objects.order_by("id").values_list("type", flat=True))
    assert types == ["issue.started", "issue.paused", "issue.sent"]
    paused = json.loads(WebhookEvent.objects.get(type="issue.paused").body)["data"]
    assert paused == {"id": issue.pk, "newsletter": "daily-brief", "subject": issue.subject, "status": "paused",
                      "reason": "complaints"}  # fmt: skip


def test_old_finished_events_and_keys_are_pruned(receiver, admin_api):
    from api.models import IdempotencyKey
    from api.services.retention import api_records_prune

    endpoint_for(receiver)
    events_record("issue.sent", {"id": 1})
    events_record("issue.sent", {"id": 2})
    deliver_all()
    receiver.statuses = [500]
    events_record("issue.sent", {"id": 3})
    deliver_all()  # still pending: kept however old
    WebhookEvent.objects.update(created_at=timezone.now() - timedelta(days=31))
    admin_api.call("POST", "/articles/", {"external_id": "p-1", "headline": "x"}, **{"Idempotency-Key": "k1"})
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert api_records_prune()["idempotency_keys"] == 1
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["issue.sent"]
    assert WebhookDelivery.objects.get().status == "pending" and WebhookAttempt.objects.count() == 1
