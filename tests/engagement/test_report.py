"""The report pages: per issue and per newsletter, what they count (bounces, complaints, unsubscribes attributed,
human and machine apart, per story and link, the timeline), the CSV, and who may see them."""

import csv
import io
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from engagement import tokens
from engagement.models import IssueSnapshot, Link, Tally, Verdict
from engagement.services import hits
from engagement.services.report import issue_report, newsletter_overview, snapshots_refresh
from newsletter.models import Delivery, TrackingMode
from subscribers.models import ConsentEvent
from subscribers.services.unsubscribe import subscriber_unsubscribe
from tests.factories import issue_to_send, subscribers_bulk, user_with_perms

pytestmark = pytest.mark.django_db(transaction=True)

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
SCANNER = {"HTTP_USER_AGENT": "Mimecast-URL-Protect/1.0"}


@pytest.fixture
def reported(smtp_server, start, drain, client):
    issue = issue_to_send()
    issue.newsletter.tracking_mode = TrackingMode.AGGREGATE
    issue.newsletter.save()
    readers = subscribers_bulk(issue.newsletter, 5)
    start(issue)
    drain(issue)
    rows = Delivery.objects.filter(issue=issue).order_by("id")
    rows.filter(pk=rows[0].pk).update(bounce_kind="hard")
    rows.filter(pk=rows[1].pk).update(bounce_kind="soft")
    rows.filter(pk=rows[2].pk).update(complained_at=timezone.now())
    subscriber_unsubscribe(readers[3], issue.newsletter, source=ConsentEvent.Source.LINK)
    story = Link.objects.get(issue=issue, url="https://news.example.org/story-1")
    reader = tokens.reader_part(issue.pk, 0, int(time.time() - 3600))
    path = f"/r/{tokens.link_part(issue.pk, story.number)}.{reader}"
    for _ in range(3):
        client.get(path, **BROWSER)
    client.get(path, **SCANNER)
    hits.hits_flush(now=time.time() + 60)
    return issue, story


def test_the_report_counts_what_came_back_and_who_clicked(reported):
    issue, story = reported
    report = issue_report(issue)
    assert (report.delivered, report.bounced_hard, report.bounced_soft, report.complaints) == (5, 1, 1, 1)
    assert report.unsubscribes == 1
    assert report.clicks == {"human": 3, "machine": 1}
    (row,) = [r for r in report.links if r.number == story.number]
    assert (row.human, row.machine, row.story) == (3, 1, "Story 1: council weighs budget")
    assert report.stories[0].story == "Story 1: council weighs budget" and report.stories[0].human == 3
    assert sum(h.human_clicks for h in report.timeline) == 3 and report.timeline[0].human_clicks == 3


def test_the_report_page_shows_charts_with_tables_and_the_csv_export(reported, client):
    issue, story = reported
    client.force_login(user_with_perms("editor", "view_issue"))
    page = client.get(f"/admin/engagement/issue/{issue.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<svg viewBox="0 ') == 3 and html.count('role="img"') == 3 and html.count("<table") >= 4
    assert "Story 1: council weighs budget" in html and "https://news.example.org/story-1" in html
    response = client.get(f"/admin/engagement/issue/{issue.pk}/csv/")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ["summary", "delivered", "", "", "", "5", "", ""] in rows
    link = [r for r in rows if r[0] == "link" and r[1] == str(story.number)][0]
    assert link[5:7] == ["3", "1"]
    overview = client.get(f"/admin/engagement/newsletter/{issue.newsletter_id}/")
    assert overview.status_code == 200 and issue.frozen_subject in overview.content.decode()


def test_the_report_needs_the_view_issue_permission(reported, client):
    issue, _story = reported
    client.force_login(user_with_perms("nobody"))
    assert client.get(f"/admin/engagement/issue/{issue.pk}/").status_code == 403
    client.logout()
    assert client.get(f"/admin/engagement/issue/{issue.pk}/").status_code == 302  # to the login page


def test_the_overview_puts_the_last_ten_issues_side_by_side(reported):
    issue, _story = reported
    (summary,) = newsletter_overview(issue.newsletter)
    assert (summary.delivered, summary.human_clicks, summary.machine_clicks, summary.unsubscribes) == (5, 3, 1, 1)
    assert (summary.complaints, summary.bounces) == (1, 2)


def test_hits_long_after_the_send_land_in_the_last_timeline_slot(reported):
    issue, story = reported
    Tally.objects.create(issue=issue, link_number=story.number, verdict=Verdict.HUMAN, hour=48, count=7)
    report = issue_report(issue)
    assert report.timeline[-1].human_clicks == 7 and len(report.timeline) == 49


def test_a_finished_issue_reads_its_snapshot_which_beat_refreshes(reported):
    issue, _story = reported
    issue.refresh_from_db()
    assert snapshots_refresh() == 1 and snapshots_refresh() == 0  # twice: nothing more to count
    Delivery.objects.filter(issue=issue).update(bounce_kind="hard")  # bounces keep arriving after the send
    report = issue_report(issue)
    assert report.bounced_hard == 1 and report.counted_at is not None  # the snapshot, until beat counts again
    IssueSnapshot.objects.update(taken_at=timezone.now() - timedelta(minutes=10))
    assert snapshots_refresh() == 1
    assert issue_report(issue).bounced_hard == 5
