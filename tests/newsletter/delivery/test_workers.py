"""End to end through real Celery worker processes, the configured broker and database, and a real SMTP server."""

import time

import pytest
from django.db import transaction

from newsletter.delivery import issues_recover
from newsletter.models import Delivery, Issue, SendRun
from newsletter.services import sending
from newsletter.tasks import recover_task
from subscribers.models import Subscription
from subscribers.tokens import Purpose, read_short_token, read_token
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quiet_smtp_log")]


@pytest.fixture
def worker_env(smtp_server, settings):
    """Environment for worker processes; MASTHEAD overrides apply to this process too (recovery runs here)."""

    def build(**extra) -> dict[str, str]:
        settings.MASTHEAD = {**settings.MASTHEAD, **{k: v for k, v in extra.items() if k in settings.MASTHEAD}}
        env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port), "MAIL_DOMAIN": "news.example.org"}
        env.update({k: str(v) for k, v in extra.items()})
        return env

    return build


def finished(issue):
    issue.refresh_from_db()
    return issue.status == Issue.Status.SENT


def test_a_few_thousand_recipients_each_get_exactly_one_message_with_their_own_link(
    celery_worker, smtp_server, worker_env, settings, counts, parse, received_by_address, wait_for
):
    settings.MAIL_DOMAIN = "news.example.org"
    issue = issue_to_send()
    readers = subscribers_bulk(issue.newsletter, 2000)
    celery_worker(concurrency=2, env=worker_env())
    sending.issue_send_now(issue)
    wait_for(lambda: finished(issue), timeout=120, what="the issue to be sent")

    seen = received_by_address(smtp_server)
    assert len(seen) == 2000 and set(seen.values()) == {1}
    assert counts(issue)["sent"] == 2000
    tokens = {r.email: str(r.token) for r in readers}
    delivery_emails = dict(Delivery.objects.filter(issue=issue).values_list("pk", "subscriber__email"))
    message_ids = set()
    for received in smtp_server.messages:
        mail = parse(received.data)
        address = received.rcpt_tos[0]
        # VERP: the envelope sender is this delivery's own signed bounce address.
        local, _, _domain = received.mail_from.partition("@")
        assert delivery_emails[read_short_token(Purpose.BOUNCE, local.removeprefix("bounces+"))] == address
        assert mail["To"].addresses[0].addr_spec == address
        for header in ("From", "Reply-To", "Date", "Subject", "List-Id"):
            assert mail[header], header
        assert mail["Message-ID"].endswith("@news.example.org>")
        message_ids.add(mail["Message-ID"])
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        one_click = str(mail["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
        assert "<mailto:" in str(mail["List-Unsubscribe"])
        token = read_token(Purpose.UNSUBSCRIBE, one_click.split("/u/", 1)[1].split("/", 1)[0])
        assert token.subscriber_token == tokens[address] and token.newsletter == issue.newsletter.slug
        assert one_click.removesuffix("one-click/") in mail.get_body(("html",)).get_content()
    assert len(message_ids) == 2000


def test_two_workers_at_once_send_no_duplicates(celery_worker, smtp_server, worker_env, received_by_address, wait_for):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 1500)
    env = worker_env(SEND_BATCH_SIZE=50)
    celery_worker(concurrency=2, env=env)
    celery_worker(concurrency=2, env=env)
    sending.issue_send_now(issue)
    wait_for(lambda: finished(issue), timeout=120, what="the issue to be sent")
    seen = received_by_address(smtp_server)
    assert len(seen) == 1500 and set(seen.values()) == {1}


def test_a_worker_killed_mid_send_loses_nobody_and_duplicates_at_most_its_message_in_flight(
    celery_worker, smtp_server, worker_env, counts, received_by_address, wait_for, recover_until
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 1200)
    # Slow enough (rate limit) to be killed mid-send; a short lease so recovery happens in seconds.
    env = worker_env(SEND_LEASE_SECONDS=2, RATE_PER_SECOND=300, SEND_BATCH_SIZE=100)
    worker = celery_worker(concurrency=1, env=env)
    sending.issue_send_now(issue)
    wait_for(
        lambda: len(smtp_server.messages) >= 300 and Delivery.objects.filter(issue=issue, status="sending").exists(),
        timeout=60,
        what="the send to be under way",
    )
    worker.kill()  # SIGKILL to the main process and its pool child: one process was sending
    stranded = Delivery.objects.filter(issue=issue, status=Delivery.Status.SENDING).count()
    assert 0 < len(smtp_server.messages) < 1200
    print(f"killed with {stranded} rows in flight")

    celery_worker(concurrency=1, env=env)
    recover_until(lambda: finished(issue), timeout=90)
    seen = received_by_address(smtp_server)
    assert len(seen) == 1200  # nobody missing
    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates <= 1  # at most the message in flight in the one killed process
    assert counts(issue)["sent"] == 1200


def test_smtp_4xx_for_a_while_then_everyone_is_delivered_with_retries_recorded(
    celery_worker, smtp_server, worker_env, received_by_address, recover_until
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 300)
    refusals = {"left": 150}

    def rcpt_reply(address):
        if refusals["left"] > 0:
            refusals["left"] -= 1
            return "451 4.7.1 Greylisted, try again later"
        return None

    smtp_server.rcpt_reply = rcpt_reply
    celery_worker(concurrency=2, env=worker_env(SEND_LEASE_SECONDS=2, SEND_RETRY_BASE_SECONDS=0.5))
    sending.issue_send_now(issue)
    recover_until(lambda: finished(issue), timeout=90)
    seen = received_by_address(smtp_server)
    assert len(seen) == 300 and set(seen.values()) == {1}
    retried = Delivery.objects.filter(issue=issue, attempts__gt=1)
    # Each of the 150 refusals is one more attempt of a row that then got through. (A row retried as soon as it is
    # due may be greylisted twice while the refusals last, so count attempts, not rows.)
    assert sum(d.attempts - 1 for d in retried) == 150 and all(d.error_code == "451" for d in retried)


def test_pause_stops_within_a_second_resume_finishes_cancel_stops_for_good(
    celery_worker, smtp_server, worker_env, counts, received_by_address, wait_for
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 600)
    celery_worker(concurrency=2, env=worker_env(RATE_PER_SECOND=150, SEND_BATCH_SIZE=40))
    sending.issue_send_now(issue)
    wait_for(lambda: len(smtp_server.messages) >= 100, timeout=60, what="the send to be under way")
    sending.issue_pause(issue)
    wait_for(lambda: not Delivery.objects.filter(issue=issue, status="sending").exists(), what="batches to stop")
    at_pause = len(smtp_server.messages)
    time.sleep(1.5)  # nothing may be sent while paused
    assert len(smtp_server.messages) == at_pause == counts(issue)["sent"] < 600

    sending.issue_resume(issue)
    wait_for(lambda: len(smtp_server.messages) >= at_pause + 100, timeout=60, what="the send to resume")
    sending.issue_cancel(issue)
    wait_for(lambda: not Delivery.objects.filter(issue=issue, status="sending").exists(), what="batches to stop")
    time.sleep(1.5)
    issue.refresh_from_db()
    c = counts(issue)
    assert issue.status == Issue.Status.CANCELLED and c["pending"] == c["deferred"] == 0
    assert len(smtp_server.messages) == c["sent"] < 600 and c["skipped"] == 600 - c["sent"]
    assert set(received_by_address(smtp_server).values()) == {1}


def test_a_scheduled_issue_starts_once_even_with_recovery_running_twice_at_once(
    celery_worker, smtp_server, worker_env, received_by_address, wait_for
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 200)
    sending.issue_schedule(issue, sending.timezone.now() + sending.timezone.timedelta(seconds=1))
    Issue.objects.filter(pk=issue.pk).update(scheduled_at=sending.timezone.now())  # it is due
    celery_worker(concurrency=2, env=worker_env())
    for _ in range(4):  # four concurrent recoveries over two worker processes, and one here
        recover_task.delay()
    issues_recover()
    wait_for(lambda: finished(issue), timeout=60, what="the scheduled issue to be sent")
    assert Delivery.objects.filter(issue=issue).count() == 200 and SendRun.objects.filter(issue=issue).count() == 1
    seen = received_by_address(smtp_server)
    assert len(seen) == 200 and set(seen.values()) == {1}


def test_unsubscribing_mid_send_stops_delivery_to_that_address(
    celery_worker, smtp_server, worker_env, counts, received_by_address, wait_for
):
    issue = issue_to_send()
    readers = subscribers_bulk(issue.newsletter, 400)
    celery_worker(concurrency=1, env=worker_env(RATE_PER_SECOND=150, SEND_BATCH_SIZE=20))
    sending.issue_send_now(issue)
    wait_for(lambda: len(smtp_server.messages) >= 50, timeout=60, what="the send to be under way")
    late = readers[-1]
    with transaction.atomic():
        # Hold the row while unsubscribing so no claim takes it between the check and the change.
        row = Delivery.objects.select_for_update().get(issue=issue, subscriber=late)
        assert row.status == Delivery.Status.PENDING
        Subscription.objects.filter(subscriber=late, newsletter=issue.newsletter).update(status="unsubscribed")
    wait_for(lambda: finished(issue), timeout=60, what="the issue to be sent")
    assert late.email not in received_by_address(smtp_server)
    row = Delivery.objects.get(issue=issue, subscriber=late)
    assert row.status == Delivery.Status.SKIPPED and "unsubscribed" in row.error_text
    assert counts(issue)["sent"] == 399


def test_a_send_whose_queued_tasks_were_lost_is_restarted_by_recovery(
    celery_worker, smtp_server, worker_env, purge_queues, received_by_address, recover_until
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 150)
    sending.issue_send_now(issue)  # the materialise task is queued, but no worker runs...
    purge_queues()  # ...and the broker loses it (a Redis flush)
    env = worker_env(SEND_LEASE_SECONDS=1)
    celery_worker(concurrency=1, env=env)
    recover_until(lambda: finished(issue), timeout=60)
    seen = received_by_address(smtp_server)
    assert len(seen) == 150 and set(seen.values()) == {1}


def test_test_send_goes_on_the_priority_queue_marked_test(celery_worker, smtp_server, worker_env, parse, wait_for):
    issue = issue_to_send()
    celery_worker(concurrency=1, queues="priority", env=worker_env())
    sending.issue_send_test(issue, ["editor@news.example.org", "chief@news.example.org"])
    wait_for(lambda: len(smtp_server.messages) == 2, timeout=30, what="the test messages")
    mail = parse(smtp_server.to("editor@news.example.org")[0].data)
    assert mail["Subject"].startswith("[TEST] ") and mail["List-Unsubscribe"]
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT and not Delivery.objects.filter(issue=issue).exists()
