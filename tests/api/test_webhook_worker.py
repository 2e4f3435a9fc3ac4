"""A real Celery worker killed with SIGKILL in the middle of a webhook request: the event is delivered later by
another worker, with the same webhook-id (at least once; the receiver deduplicates on the id)."""

import threading

import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.webhooks.delivery import webhooks_dispatch
from api.webhooks.outbox import events_record

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_LEASE_SECONDS": "6", "WEBHOOK_TIMEOUT_SECONDS": "5"}


def test_worker_killed_mid_delivery_then_delivered_with_the_same_id(celery_worker, receiver, wait_for):
    endpoint = WebhookEndpoint.objects.create(url=receiver.url)
    receiver.hold = threading.Event()  # the first request hangs until the worker is dead
    first = celery_worker(env=WORKER_ENV)
    with transaction.atomic():
        events_record("issue.sent", {"id": 42, "subject": "Tuesday"})
    event = WebhookEvent.objects.get()

    assert receiver.holding.wait(60), first.output()
    first.kill()  # SIGKILL the whole worker, mid-request
    hold, receiver.hold = receiver.hold, None
    hold.set()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivering" and delivery.delivered_at is None  # the outcome never got written

    celery_worker(env=WORKER_ENV)

    def delivered() -> bool:
        webhooks_dispatch()  # as beat does: hands the row over once the dead worker's lease has expired
        return WebhookDelivery.objects.get().status == "delivered"

    wait_for(delivered, timeout=60, interval=1, what="the delivery after the kill")

    assert receiver.ids() == [event.msg_id, event.msg_id]
    for request in receiver.requests:
        assert Webhook(endpoint.secret).verify(request.body, request.headers)["data"]["id"] == 42
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.log.count() == 1  # the killed attempt left no log row
