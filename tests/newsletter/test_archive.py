"""The public archive: sent issues listed when the archive is public, each issue's frozen page without personal
links, and RSS/Atom feeds of issues."""

import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse
from django.utils import timezone

from newsletter import placeholders
from newsletter.models import Issue
from newsletter.services.rendering import issue_freeze
from tests.factories import NewsletterFactory, issue_with_articles

pytestmark = pytest.mark.django_db


def sent_issue(newsletter=None, **fields) -> Issue:
    issue = issue_with_articles(2, **({"newsletter": newsletter} if newsletter else {}), **fields)
    issue_freeze(issue)
    issue.status, issue.finished_at = Issue.Status.SENT, timezone.now()
    issue.save()
    return issue


def test_archive_lists_sent_issues_only(client):
    newsletter = NewsletterFactory()
    first, second = sent_issue(newsletter, subject="First issue"), sent_issue(newsletter, subject="Second issue")
    issue_with_articles(1, newsletter=newsletter, subject="Still a draft")
    other = sent_issue(subject="Another newsletter's issue")
    response = client.get(reverse("newsletter:archive", args=[newsletter.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "First issue" in page and "Second issue" in page
    assert "Still a draft" not in page and other.subject not in page
    assert reverse("newsletter:issue", args=[newsletter.slug, first.public_id]) in page
    assert page.index("Second issue") < page.index("First issue")  # newest first
    assert reverse("newsletter:feed", args=[newsletter.slug]) in page
    assert second.public_id


def test_archive_and_feeds_are_404_when_the_archive_is_off(client):
    newsletter = NewsletterFactory(archive_public=False)
    sent_issue(newsletter)
    for name in ("archive", "feed", "atom"):
        assert client.get(reverse(f"newsletter:{name}", args=[newsletter.slug])).status_code == 404
    assert client.get(reverse("newsletter:archive", args=["no-such-newsletter"])).status_code == 404


def test_issue_page_is_the_frozen_email_without_personal_links(client):
    issue = sent_issue()
    headlines = [a.headline for a in issue.articles.all()]
    article = issue.articles.first()
    article.headline = "Edited after sending"
    article.save()
    url = reverse("newsletter:issue", args=[issue.newsletter.slug, issue.public_id])
    assert issue.frozen_html.count(url) >= 1  # the view-in-browser link points here
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    for headline in headlines:
        assert headline in page
    assert "Edited after sending" not in page
    for marker in placeholders.MARKERS:
        assert marker not in page
    assert "Unsubscribe" not in page and "Manage your preferences" not in page
    assert "Hi there," in page
    assert issue.newsletter.postal_address in page
    assert "X-Robots-Tag" not in response


def test_issue_page_works_from_emails_even_when_the_archive_is_private(client):
    issue = sent_issue(NewsletterFactory(archive_public=False))
    response = client.get(reverse("newsletter:issue", args=[issue.newsletter.slug, issue.public_id]))
    assert response.status_code == 200 and response["X-Robots-Tag"] == "noindex"


def test_unsent_issue_has_no_page(client):
    issue = issue_with_articles(1)
    assert client.get(reverse("newsletter:issue", args=[issue.newsletter.slug, issue.public_id])).status_code == 404


def test_rss_and_atom_feeds_list_sent_issues(client):
    newsletter = NewsletterFactory()
    issue = sent_issue(newsletter, subject="Ferries & festivals")
    issue_with_articles(1, newsletter=newsletter, subject="Draft")
    rss = client.get(reverse("newsletter:feed", args=[newsletter.slug]))
    assert rss.status_code == 200 and rss["Content-Type"].startswith("application/rss+xml")
    channel = ET.fromstring(rss.content).find("channel")
    items = channel.findall("item")
    assert [i.findtext("title") for i in items] == ["Ferries & festivals"]
    assert items[0].findtext("link").endswith(f"/archive/{newsletter.slug}/{issue.public_id}/")
    assert items[0].findtext("description") == issue.preheader

    atom = client.get(reverse("newsletter:atom", args=[newsletter.slug]))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = ET.fromstring(atom.content).findall("a:entry", ns)
    assert [e.findtext("a:title", namespaces=ns) for e in entries] == ["Ferries & festivals"]
