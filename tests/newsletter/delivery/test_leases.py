"""Short leases that live as long as their batch: a dead worker's rows come back fast, a live batch keeps its own."""

import threading

import pytest
from django.utils import timezone

from newsletter import delivery
from newsletter.delivery import ratelimit
from newsletter.models import Delivery, Issue
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_that_outlives_its_short_lease_keeps_its_rows(smtp_server, settings, start, received_by_address):
    """A 2-second lease, a batch that takes about 3 seconds (4 messages a second): the batch renews its lease, so
    recovery running all along requeues nothing and nobody gets a message twice."""
    settings.MASTHEAD = {**settings.MASTHEAD, "SEND_LEASE_SECONDS": 2, "RATE_PER_SECOND": 4}
    ratelimit._store.cache_clear()
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 12)
    start(issue)
    outcome = {}
    batch = threading.Thread(target=lambda: outcome.update(result=delivery.deliveries_send_batch(issue.pk)))
    batch.start()
    requeued = 0
    while batch.is_alive():
        requeued += delivery.issues_recover().leases_requeued
        batch.join(0.2)
    ratelimit._store.cache_clear()
    assert requeued == 0 and outcome["result"].sent == 12 and not outcome["result"].stopped
    assert set(received_by_address(smtp_server).values()) == {1}
    assert Issue.objects.get(pk=issue.pk).status == Issue.Status.SENDING


def test_rows_of_a_dead_batch_come_back_and_their_issue_gets_a_chain(smtp_server, settings, start):
    """Rows whose lease ran out (their worker died: a live batch renews) go back to pending, and recovery starts a
    chain for their issue at once instead of waiting for the send's heartbeat to go stale."""
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 3)
    start(issue)
    Delivery.objects.filter(issue=issue).update(status=Delivery.Status.SENDING, lease_until=timezone.now())
    report = delivery.issues_recover(now=timezone.now() + timezone.timedelta(seconds=1))
    assert report.leases_requeued == 3 and report.kicked == 1
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.PENDING).count() == 3
