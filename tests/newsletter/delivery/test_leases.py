"""Short leases that live as long as their batch: a dead worker's rows come back fast, a live batch keeps its own."""

import threading
import time

import pytest
from django.conf import settings as settings_module
from django.utils import timezone

from newsletter import delivery
from newsletter.delivery import ratelimit
from newsletter.models import Delivery, Issue
from newsletter.services import sending
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


def beat_until(predicate, timeout: float, what: str) -> float:
    """Run recovery as beat does (every RECOVERY_INTERVAL seconds) until `predicate` holds; the seconds it took."""
    interval = float(settings_module.CELERY_BEAT_SCHEDULE["newsletter-recover"]["schedule"])
    started = time.monotonic()
    next_pass = started + interval
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() >= next_pass:
            delivery.issues_recover()
            next_pass += interval
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.worker
@pytest.mark.usefixtures("quiet_smtp_log")
def test_6000_recipients_two_workers_killed_their_rows_resent_within_30s_and_done_within_60s_of_the_last_kill(
    celery_worker, smtp_server, counts, received_by_address
):
    """The production lease (SEND_LEASE_SECONDS) and recovery interval, no rate limit (so the pipelined SMTP path
    runs), three workers of one process each; two are SIGKILLed mid-send, one after the other. Each time, every
    row that was in flight at the kill is sent within 30 s (the dead worker's come back after their lease, picked
    up by a live worker), the issue is sent within 60 s of the last kill, nobody is missed, and at most the one
    message on the wire of each killed process arrives twice."""
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 6000)
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port), "MAIL_DOMAIN": "news.example.org"}
    workers = [celery_worker(concurrency=1, env=env) for _ in range(3)]
    sending.issue_send_now(issue)
    kills = []  # (when, the rows in flight then): the two kills come close together, while most is unsent
    for victim, at in ((workers[0], 1000), (workers[1], 2000)):
        beat_until(
            lambda at=at: (
                len(smtp_server.messages) >= at and Delivery.objects.filter(issue=issue, status="sending").exists()
            ),
            timeout=120,
            what=f"{at} messages and batches under way",
        )
        victim.kill()
        in_flight = set(
            Delivery.objects.filter(issue=issue, status=Delivery.Status.SENDING).values_list("pk", flat=True)
        )
        assert in_flight and len(smtp_server.messages) < 6000
        kills.append((time.monotonic(), in_flight))
    resent_after = []
    for killed_at, in_flight in kills:
        beat_until(
            lambda ids=in_flight: not Delivery.objects.filter(pk__in=ids).exclude(status=Delivery.Status.SENT).exists(),
            timeout=60,
            what="the rows in flight at the kill to be sent",
        )
        resent_after.append(round(time.monotonic() - killed_at, 1))
    beat_until(
        lambda: Issue.objects.filter(pk=issue.pk, status=Issue.Status.SENT).exists(), timeout=120, what="the send"
    )
    finished = time.monotonic() - kills[-1][0]
    print(f"rows in flight at each kill sent after {resent_after} s; finished {finished:.1f} s after the last kill")
    assert max(resent_after) < 30
    assert finished < 60
    seen = received_by_address(smtp_server)
    assert len(seen) == 6000 and counts(issue)["sent"] == 6000
    assert sum(n - 1 for n in seen.values()) <= 2  # the message on the wire of each killed process, at most
