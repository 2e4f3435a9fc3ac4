"""Canary sends: a random first share goes alone, the send holds, then continues by itself or stops with the reason
when the first readers bounce or complain beyond the newsletter's limits."""

import pytest

from newsletter.delivery import issues_recover
from newsletter.delivery.ledger import deliveries_canary_pick, deliveries_materialise
from newsletter.models import Delivery, Issue, SendRun
from newsletter.services import sending
from tests.factories import issue_to_send, subscribers_bulk

HELD, SENT = Delivery.Status.HELD, Delivery.Status.SENT


pytestmark = pytest.mark.usefixtures("quiet_smtp_log")


def canary_issue(readers: int, percent: int = 10, minimum: int = 20, hold: int = 0) -> Issue:
    issue = issue_to_send()
    Issue.objects.filter(pk=issue.pk).update(canary_percent=percent, canary_minimum=minimum, canary_hold_minutes=hold)
    issue.refresh_from_db()
    subscribers_bulk(issue.newsletter, readers)
    return issue


@pytest.mark.django_db
def test_the_canary_is_a_random_share_picked_once_and_the_rest_is_held(django_capture_on_commit_callbacks):
    issue = canary_issue(300, percent=5, minimum=20)
    with django_capture_on_commit_callbacks():
        sending.issue_send_now(issue)
    assert deliveries_materialise(issue.pk) is None
    pending = set(Delivery.objects.filter(issue=issue, status="pending").values_list("subscriber_id", flat=True))
    assert len(pending) == 20 and Delivery.objects.filter(issue=issue, status=HELD).count() == 280
    assert SendRun.objects.get(pk=issue.pk).canary_size == 20
    assert deliveries_canary_pick(issue) == 20  # twice: nothing more released
    assert Delivery.objects.filter(issue=issue, status="pending").count() == 20
    assert max(pending) - min(pending) > 20  # random, not simply the oldest readers
    assert sending.issue_progress(issue)["canary"]["state"] == "sending"
    # Cancelling skips the held rows too; nothing is left open.
    sending.issue_cancel(issue)
    assert not Delivery.objects.filter(issue=issue, status__in=["pending", "held"]).exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_healthy_canary_lets_the_rest_follow_by_itself(celery_worker, smtp_server, recover_until):
    issue = canary_issue(120, percent=10, minimum=20)
    celery_worker(env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)})
    sending.issue_send_now(issue)
    recover_until(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, "the whole send")
    received = [r for m in smtp_server.messages for r in m.rcpt_tos]
    assert len(received) == len(set(received)) == 120
    run = SendRun.objects.get(pk=issue.pk)
    assert run.canary_size == 20 and run.canary_decided_at is not None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_hard_bounces_in_the_canary_holds_the_rest_with_the_reason(
    celery_worker, smtp_server, client, admin_user, recover_until
):
    issue = canary_issue(200, percent=10, minimum=20)
    # The receiving server refuses a third of the addresses for good.
    smtp_server.rcpt_reply = lambda address: "550 5.1.1 No such user" if int(address[6:-12]) % 3 == 0 else None
    celery_worker(env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)})
    sending.issue_send_now(issue)
    recover_until(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.PAUSED, "the canary to hold")
    issue.refresh_from_db()
    assert issue.status_reason.startswith("Canary held the send: ")
    assert "of the first 20 readers hard-bounced" in issue.status_reason and "the limit is 2 %" in issue.status_reason
    assert Delivery.objects.filter(issue=issue, status=HELD).count() == 180
    canary = set(Delivery.objects.filter(issue=issue).exclude(status=HELD).values_list("subscriber__email", flat=True))
    assert {r for m in smtp_server.messages for r in m.rcpt_tos} <= canary  # nobody held was mailed
    # Recovery leaves a held send alone.
    issues_recover()
    assert Delivery.objects.filter(issue=issue, status=HELD).count() == 180

    client.force_login(admin_user)
    page = client.get(f"/admin/newsletter/issue/{issue.pk}/progress/").content.decode()
    assert client.get(f"/admin/newsletter/issue/{issue.pk}/send/progress/").status_code == 404
    assert "Canary held the send" in page and "resume to send it anyway" in page

    # The editor decides the rest may go anyway.
    sending.issue_resume(issue)
    recover_until(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, "the rest after resume")
    assert Delivery.objects.filter(issue=issue, status=SENT).count() == 200 - 67
    assert Issue.objects.get(pk=issue.pk).status_reason == ""
