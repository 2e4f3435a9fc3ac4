"""Hardening: a Content-Security-Policy on every public page, the archive and the previews; public forms take no
files and small bodies only (RFC 8058's one-click still works); every email's Message-ID is on MAIL_DOMAIN; a
deploy check warns when SITE_URL is not https with DEBUG off."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from config.csp import site_url_check
from newsletter.models import Issue
from newsletter.services.rendering import issue_freeze
from subscribers.models import Subscriber, Subscription
from subscribers.services.emails import confirmation_send, export_link_send
from subscribers.tokens import Purpose, make_token
from tests.factories import NewsletterFactory, SubscriberFactory, issue_with_articles, subscribed, user_with_perms

pytestmark = pytest.mark.django_db


@pytest.fixture
def newsletter():
    return NewsletterFactory(slug="daily-brief", archive_public=True)


def sent_issue(newsletter) -> Issue:
    issue = issue_with_articles(1, newsletter=newsletter)
    issue_freeze(issue)
    issue.status, issue.finished_at = Issue.Status.SENT, timezone.now()
    issue.save()
    return issue


def test_every_public_page_has_a_content_security_policy(client, newsletter):
    issue = sent_issue(newsletter)
    reader = subscribed(newsletter, email="reader@example.com")
    site_pages = [
        "/",
        f"/archive/{newsletter.slug}/",
        f"/subscribe/{newsletter.slug}/",
        f"/subscribe/{newsletter.slug}/embed/",
        f"/subscribe/{newsletter.slug}/thanks/",
        f"/preferences/{make_token(Purpose.PREFERENCES, reader.token)}/",
        f"/u/{make_token(Purpose.UNSUBSCRIBE, reader.token, newsletter.slug)}/",
        "/privacy/",
        "/terms/",
        "/preferences/forged/",
    ]
    for path in site_pages:
        response = client.get(path)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "object-src 'none'" in policy and "base-uri 'none'" in policy, path
    page = client.get(reverse("newsletter:issue", args=[newsletter.slug, issue.public_id]))
    policy = page["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "form-action 'none'" in policy


def test_the_admins_previews_are_email_pages_framed_only_by_the_admin(client, newsletter):
    editor = user_with_perms("editor", "view_issue", "change_issue", "view_article")
    client.force_login(editor)
    issue = issue_with_articles(1, newsletter=newsletter)
    response = client.get(reverse("admin:newsletter_issue_preview_html", args=[issue.pk]))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy and "script-src" not in policy


def test_public_forms_refuse_files_and_large_bodies_and_one_click_still_works(client, newsletter):
    reader = subscribed(newsletter, email="reader@example.com")
    signup = f"/subscribe/{newsletter.slug}/embed/"
    data = {"email": "new@example.com", "consent": "on", "name": ""}
    upload = {**data, "file": SimpleUploadedFile("x.txt", b"hello")}
    assert client.post(signup, upload).status_code == 400
    assert client.post(signup, {**data, "name": "x" * 20000}).status_code == 413
    assert not Subscriber.objects.filter(email="new@example.com").exists()

    one_click = f"/u/{make_token(Purpose.UNSUBSCRIBE, reader.token, newsletter.slug)}/one-click/"
    response = client.post(one_click, {"List-Unsubscribe": "One-Click"})  # multipart, as some providers send
    assert response.status_code == 200
    assert Subscription.objects.get(subscriber=reader).status == Subscription.Status.UNSUBSCRIBED


def test_every_email_has_a_message_id_on_the_mail_domain(newsletter, settings, smtp_server):
    settings.MAIL_DOMAIN = "news.example.org"
    pending = SubscriberFactory(email="p@example.com", status=Subscriber.Status.PENDING)
    confirmation_send(pending, newsletter)
    export_link_send(pending)
    assert len(smtp_server.messages) == 2
    for received in smtp_server.messages:
        assert received.message["Message-ID"].endswith("@news.example.org>")


def test_deploy_check_warns_when_site_url_is_not_https_in_production(settings):
    settings.DEBUG, settings.SITE_URL = False, "http://news.example.org"
    assert [w.id for w in site_url_check()] == ["masthead.W010"]
    settings.SITE_URL = "https://news.example.org"
    assert site_url_check() == []
    settings.DEBUG, settings.SITE_URL = True, "http://localhost:8000"
    assert site_url_check() == []


def test_check_deploy_runs_the_site_url_check(settings, capsys):
    settings.DEBUG, settings.SITE_URL = False, "http://news.example.org"
    call_command("check", "--deploy", "--tag", "security")
    assert "masthead.W010" in capsys.readouterr().err
