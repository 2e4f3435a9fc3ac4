"""The admin's sending controls: GET renders, POST changes, and only with the send permission (tests excepted)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from newsletter import delivery
from newsletter.models import Delivery, Issue, WorkerHeartbeat
from newsletter.services import sending
from tests.factories import issue_to_send, subscribers_bulk

ACTIONS = ["send_now", "send_schedule", "send_unschedule", "send_pause", "send_resume", "send_cancel", "send_resend"]


def editor(send: bool) -> User:
    user = User.objects.create_user("editor" + ("-sender" if send else ""), "ed@news.example.org", "pw", is_staff=True)
    names = ["view_issue", "change_issue"] + (["send_issue"] if send else [])
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="newsletter", codename__in=names))
    return user


def url(name: str, issue: Issue) -> str:
    return reverse(f"admin:newsletter_issue_{name}", args=[issue.pk])


@pytest.mark.django_db
@pytest.mark.parametrize("action", ACTIONS + ["send_test"])
def test_state_changing_views_refuse_get_with_405(client, action):
    issue = issue_to_send()
    client.force_login(editor(send=True))
    assert client.get(url(action, issue)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("action", ACTIONS)
def test_state_changing_views_need_the_send_permission(client, action):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 3)
    client.force_login(editor(send=False))
    assert client.post(url(action, issue), {"when": "2099-01-01T06:00"}).status_code == 403
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT and not Delivery.objects.exists()


@pytest.mark.django_db
def test_confirmation_page_shows_the_recipient_count_and_send_now_starts_the_send(
    client, django_capture_on_commit_callbacks
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 7)
    client.force_login(editor(send=True))
    page = client.get(url("send", issue))
    assert page.status_code == 200
    assert "This issue will go to 7 subscribers." in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url("send_now", issue))
    assert response.status_code == 302 and response["Location"] == url("progress", issue)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SENDING and issue.frozen_html and len(callbacks) == 1
    delivery.deliveries_materialise(issue.pk)
    progress = client.get(url("progress_json", issue)).json()
    assert progress["total"] == 7 and progress["counts"]["pending"] == 7 and progress["status"] == "sending"
    page = client.get(url("progress", issue)).content.decode()
    assert 'data-testid="pause"' in page and "<progress" in page
    assert client.post(url("send_pause", issue)).status_code == 302
    issue.refresh_from_db()
    assert issue.status == Issue.Status.PAUSED
    assert client.post(url("send_cancel", issue)).status_code == 302
    issue.refresh_from_db()
    assert issue.status == Issue.Status.CANCELLED and Delivery.objects.filter(status="skipped").count() == 7


@pytest.mark.django_db
def test_a_bad_schedule_time_gets_a_message_not_a_500(client):
    issue = issue_to_send()
    client.force_login(editor(send=True))
    response = client.post(url("send_schedule", issue), {"when": "next tuesday"}, follow=True)
    assert response.status_code == 200 and "is not a date and time" in response.content.decode()
    response = client.post(url("send_schedule", issue), {"when": "2001-01-01T06:00"}, follow=True)
    assert "in the past" in response.content.decode()
    response = client.post(url("send_schedule", issue), {"when": "2099-01-01T06:00"}, follow=True)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.SCHEDULED and issue.scheduled_at.year == 2099


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_editor_without_the_send_permission_can_send_a_test(client, celery_worker, smtp_server, parse, wait_for):
    issue = issue_to_send()
    client.force_login(editor(send=False))
    celery_worker(queues="priority", env={"EMAIL_PORT": str(smtp_server.port)})
    response = client.post(url("send_test", issue), {"addresses": "me@news.example.org, not an address"}, follow=True)
    assert "Not a valid email address: not an address" in response.content.decode()
    response = client.post(url("send_test", issue), {"addresses": "me@news.example.org"}, follow=True)
    assert "Test sent to me@news.example.org" in response.content.decode()
    wait_for(lambda: smtp_server.messages, what="the test message")
    assert parse(smtp_server.messages[0].data)["Subject"] == "[TEST] " + issue.subject
    issue.refresh_from_db()
    assert issue.status == Issue.Status.DRAFT


@pytest.mark.django_db
def test_send_issue_command_controls_and_prints_progress(capsys, django_capture_on_commit_callbacks):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 5)
    with django_capture_on_commit_callbacks(execute=False):
        call_command("send_issue", issue.pk)
    out = capsys.readouterr().out
    assert "to 5 subscribers" in out and "sending" in out
    call_command("send_issue", issue.pk, "--pause")
    assert "paused" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Only an issue that is sending can be paused"):
        call_command("send_issue", issue.pk, "--pause")
    with django_capture_on_commit_callbacks(execute=False):
        call_command("send_issue", issue.pk, "--resume")
    call_command("send_issue", issue.pk, "--cancel")
    assert "cancelled" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no issue with id 999999"):
        call_command("send_issue", 999999)
    issue.refresh_from_db()
    assert issue.status == Issue.Status.CANCELLED and sending.issue_progress(issue)["finished"]


@pytest.mark.django_db
def test_the_send_page_warns_when_no_worker_was_seen_for_a_minute(client):
    issue = issue_to_send()
    client.force_login(editor(send=True))
    assert 'data-testid="no-worker"' in client.get(url("send", issue)).content.decode()
    WorkerHeartbeat.objects.create(hostname="old@box", seen_at=timezone.now() - timedelta(minutes=2))
    assert 'data-testid="no-worker"' in client.get(url("send", issue)).content.decode()
    WorkerHeartbeat.objects.create(hostname="live@box", seen_at=timezone.now())
    page = client.get(url("send", issue)).content.decode()
    assert 'data-testid="no-worker"' not in page
    assert client.get(url("progress_json", issue)).json()["workers_seen"] is True


@pytest.mark.django_db
def test_the_reason_of_a_pause_or_failure_is_shown_to_the_editor(client):
    issue = issue_to_send()
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.PAUSED, frozen_at=timezone.now(), status_reason="SMTP 500 Line too long"
    )
    client.force_login(editor(send=True))
    for page in ("send", "progress"):
        assert "SMTP 500 Line too long" in client.get(url(page, issue)).content.decode()
