"""The skeleton works: settings, the demo seed, deploy checks, and a real Celery worker round trip."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from newsletter.models import Article, Image, Issue, IssueArticle, Newsletter, WorkerHeartbeat
from newsletter.services.composing import issue_checklist
from newsletter.tasks import heartbeat_task
from subscribers.models import Subscriber, Subscription

ROOT = Path(__file__).resolve().parents[1]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    test_only = ("SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECURE_SSL_REDIRECT", "ALLOWED_HOSTS")
    base = {k: v for k, v in os.environ.items() if k not in test_only}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "READ_DOT_ENV": "false", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off():
    result = run_manage("check", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_check_deploy_passes_with_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="news.example.org",
        SITE_URL="https://news.example.org",
        DATABASE_URL="postgres://masthead@127.0.0.1:5432/masthead",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_seed_demo_is_idempotent(media_root):
    def counts():
        return (
            Newsletter.objects.count(),
            Article.objects.count(),
            Issue.objects.count(),
            IssueArticle.objects.count(),
            Subscriber.objects.count(),
            Subscription.objects.count(),
            Image.objects.count(),
        )

    call_command("seed_demo", verbosity=0)
    first = counts()
    call_command("seed_demo", verbosity=0)
    assert counts() == first
    assert first[1] >= 4 and first[3] == first[1]
    issue = Issue.objects.get()
    assert issue.status == Issue.Status.DRAFT
    assert all(a.key_facts and a.bottom_line and a.body_html for a in issue.articles.all())


@pytest.mark.django_db
def test_seed_demo_ships_its_own_images_so_the_demo_issue_is_ready_to_send(media_root):
    call_command("seed_demo", verbosity=0)
    issue = Issue.objects.get()
    for article in issue.articles.all():
        assert article.image and article.image_alt and article.image_url == ""
        assert (media_root / article.image.email_600.name).is_file()
    assert issue.newsletter.logo and (media_root / issue.newsletter.logo.email_1200.name).is_file()
    assert len({item.section for item in issue.items.all()}) > 1
    checklist = issue_checklist(issue)
    assert not checklist.blocked, [item for item in checklist.items if not item.ok]


@pytest.mark.worker
def test_celery_round_trip_through_a_real_worker(celery_worker, wait_for):
    worker = celery_worker()
    heartbeat_task.delay()
    beat = wait_for(lambda: WorkerHeartbeat.objects.first(), timeout=30, what="the worker to run the task")
    assert beat.hostname.startswith("test-")
    assert "newsletter.heartbeat" in worker.output()


def test_smtp_server_fixture_records_what_it_accepts(smtp_server):
    from django.core.mail import send_mail

    smtp_server.rcpt_reply = lambda address: "550 no such user" if address.startswith("bad") else None
    send_mail("Hi", "body", "from@example.com", ["good@example.com"])
    with pytest.raises(Exception, match="550"):
        send_mail("Hi", "body", "from@example.com", ["bad@example.com"])
    assert [m.rcpt_tos for m in smtp_server.messages] == [["good@example.com"]]
    assert smtp_server.messages[0].message["Subject"] == "Hi"


def test_form_rate_limits_come_from_the_environment_and_are_checked():
    show = ("shell", "-c", "from django.conf import settings; print(settings.MASTHEAD['RATE_LIMITS'])")
    result = run_manage(*show, DEBUG="true", RATE_LIMITS="signup_ip=60/h,link_ip=5/10m")
    assert result.returncode == 0, result.stderr
    assert "{'signup_ip': '60/h', 'link_ip': '5/10m'}" in result.stdout
    result = run_manage("check", DEBUG="true", RATE_LIMITS="signup_ipp=60/h,link_ip=lots")
    assert result.returncode != 0
    assert "no limit named 'signup_ipp'" in result.stderr and "link_ip='lots' is not a rate" in result.stderr
