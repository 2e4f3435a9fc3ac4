"""Feed digests: a newsletter following a feed on a local schedule composes new items once per slot, sends them
when told to, sends nothing on a quiet day, and reports a broken feed without composing half of it."""

import http.server
import json
import threading
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from automations.models import FeedDigest, FeedDigestRun
from automations.services.digests import digest_latest_slot, digests_run_due
from config.celery import app
from newsletter.models import Article, Delivery, Issue
from tests.factories import IssueFactory, NewsletterFactory, subscribers_bulk

MADRID = "Europe/Madrid"


class Feed:
    """What the local feed server serves; tests change it between slots."""

    def __init__(self):
        self.items: list[dict] = []
        self.status = 200
        self.body: bytes | None = None  # raw override (a broken feed)

    def rss(self) -> bytes:
        entries = "".join(
            f"<item><title>{i['title']}</title><link>{i['url']}</link><guid>{i['url']}</guid>"
            f"<pubDate>{format_datetime(datetime(2026, 12, 1, 6, n, tzinfo=UTC))}</pubDate>"
            f"<description>&lt;p&gt;{i['title']} in full.&lt;/p&gt;</description></item>"
            for n, i in enumerate(self.items)
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour City wire</title>'
            f"<link>https://harbourcity.example/</link><description>Wire</description>{entries}</channel></rss>"
        ).encode()


@pytest.fixture
def feed(settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "IMPORT_ALLOW_PRIVATE_URLS": True}
    state = Feed()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = state.body if state.body is not None else state.rss()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}/wire.rss"
    yield state
    server.shutdown()
    server.server_close()


def story(n: int) -> dict:
    return {"title": f"Ferry timetable change number {n}", "url": f"https://harbourcity.example/wire/{n}"}


def make_digest(feed, **fields) -> FeedDigest:
    defaults = {
        "newsletter": NewsletterFactory(slug="wire-brief", name="Wire Brief"),
        "feed_url": feed.url,
        "weekdays": "01234",
        "send_time": time(6, 0),
        "time_zone": MADRID,
    }
    return FeedDigest.objects.create(**(defaults | fields))


def at_madrid(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Madrid (UTC+1): the 1st is a Tuesday, the 5th a Saturday."""
    return datetime(2026, 12, day, hour - 1, minute, tzinfo=UTC)


def test_slots_follow_local_wall_time_weekdays_and_daylight_saving():
    digest = FeedDigest(weekdays="01234", send_time=time(6, 0), time_zone=MADRID)
    assert digest_latest_slot(digest, at_madrid(1, 6, 30)) == at_madrid(1, 6)  # Tuesday 06:00 local = 05:00 UTC
    assert digest_latest_slot(digest, at_madrid(1, 5, 59)) == at_madrid(30 - 29, 6) - timedelta(days=1)  # Monday
    # Saturday and Sunday are not weekdays: the latest slot is Friday's.
    assert digest_latest_slot(digest, at_madrid(6, 12)) == at_madrid(4, 6)
    # Summer time (UTC+2): still 06:00 on the wall clock.
    summer = datetime(2026, 7, 1, 4, 30, tzinfo=UTC)
    assert digest_latest_slot(digest, summer) == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
    assert digest_latest_slot(FeedDigest(weekdays="", send_time=time(6), time_zone=MADRID), summer) is None


@pytest.mark.django_db
def test_new_items_are_composed_in_feed_order_once_per_slot(feed):
    feed.items = [story(1), story(2), story(3)]
    digest = make_digest(feed)
    [run] = digests_run_due(at_madrid(1, 6, 1))
    assert run.status == FeedDigestRun.Status.COMPOSED
    issue = run.issue
    assert issue.status == Issue.Status.DRAFT and issue.newsletter == digest.newsletter
    assert issue.subject == "Wire Brief: 1 December 2026"
    assert [i.article.headline for i in issue.items.order_by("position")] == [
        "Ferry timetable change number 1",
        "Ferry timetable change number 2",
        "Ferry timetable change number 3",
    ]
    # The same slot again (a second beat, a retried task): nothing more.
    assert digests_run_due(at_madrid(1, 6, 2)) == []
    assert Issue.objects.count() == 1 and FeedDigestRun.objects.count() == 1

    # Next morning two new items lead the feed: only they are composed, in feed order.
    feed.items = [story(5), story(4), *feed.items]
    [run] = digests_run_due(at_madrid(2, 6, 0))
    assert [i.article.headline[-1] for i in run.issue.items.order_by("position")] == ["5", "4"]


@pytest.mark.django_db
def test_a_quiet_day_composes_and_sends_nothing(feed):
    feed.items = [story(1)]
    make_digest(feed, auto_send=True)
    IssueFactory()  # unrelated history
    first = digests_run_due(at_madrid(1, 6, 0))[0].issue
    quiet = digests_run_due(at_madrid(2, 6, 0))
    assert [r.status for r in quiet] == [FeedDigestRun.Status.NOTHING_NEW]
    assert quiet[0].issue is None
    assert list(Issue.objects.exclude(pk=first.pk).values_list("subject", flat=True)) == [
        Issue.objects.exclude(pk=first.pk).get().subject
    ]  # only the unrelated one
    assert Article.objects.count() == 1


@pytest.mark.django_db
def test_a_late_beat_skips_a_slot_rather_than_sending_hours_late(feed):
    feed.items = [story(1)]
    make_digest(feed)
    assert digests_run_due(at_madrid(1, 9, 0)) == []
    assert FeedDigestRun.objects.count() == 0


@pytest.mark.django_db
def test_a_broken_feed_is_reported_and_retried_never_half_composed(feed):
    feed.status, feed.body = 500, b"upstream exploded"
    digest = make_digest(feed, auto_send=True)
    [run] = digests_run_due(at_madrid(1, 6, 0))
    assert run.status == FeedDigestRun.Status.FAILED
    assert "Could not fetch" in run.detail and "500" in run.detail
    assert Issue.objects.count() == 0

    feed.status, feed.body = 200, b"<html>not a feed</html>"
    [run] = digests_run_due(at_madrid(1, 6, 1))
    assert run.status == FeedDigestRun.Status.FAILED and run.attempts == 2
    assert "is not an RSS or Atom feed" in run.detail

    # Fixed within the slot's window: the retry composes and sends.
    feed.body, feed.items = None, [story(1)]
    subscribers_bulk(digest.newsletter, 2)
    [run] = digests_run_due(at_madrid(1, 6, 2))
    assert run.status == FeedDigestRun.Status.SENT and run.attempts == 3
    assert run.issue.status == Issue.Status.SENDING


@pytest.mark.django_db
def test_bad_items_hold_the_issue_for_an_editor_even_with_auto_send(feed):
    feed.items = [story(1), {"title": "", "url": "https://harbourcity.example/wire/untitled"}]
    make_digest(feed, auto_send=True)
    [run] = digests_run_due(at_madrid(1, 6, 0))
    assert run.status == FeedDigestRun.Status.NEEDS_REVIEW
    assert "has no headline" in run.detail
    assert run.issue.status == Issue.Status.DRAFT and run.issue.items.count() == 1


@pytest.mark.django_db
def test_json_feed_items_are_imported(feed):
    feed.body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Wire",
            "items": [
                {
                    "id": "wire-77",
                    "url": "https://harbourcity.example/wire/77",
                    "title": "Harbour bridge reopens",
                    "content_text": "The bridge reopened at dawn.\n\nTraffic is light.",
                    "authors": [{"name": "Amara Okafor"}],
                    "tags": ["Transport"],
                    "date_published": "2026-12-01T05:30:00Z",
                }
            ],
        }
    ).encode()
    feed.url = feed.url.replace(".rss", ".json")
    make_digest(feed)
    [run] = digests_run_due(at_madrid(1, 6, 0))
    article = run.issue.items.get().article
    assert (article.headline, article.byline, article.section, article.guid) == (
        "Harbour bridge reopens", "Amara Okafor", "Transport", "wire-77"
    )  # fmt: skip
    assert article.body_html == "<p>The bridge reopened at dawn.</p><p>Traffic is light.</p>"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_digest_is_composed_and_sent_on_schedule_by_a_real_worker(feed, smtp_server, celery_worker, wait_for):
    """Beat's task in a real worker: the slot that just came is composed and sent to every reader, once."""
    now = timezone.now().astimezone(timezone.get_default_timezone())
    feed.items = [story(1), story(2)]
    digest = make_digest(
        feed, weekdays="0123456", send_time=(now - timedelta(minutes=1)).time(), time_zone="UTC", auto_send=True
    )
    readers = subscribers_bulk(digest.newsletter, 3)
    celery_worker(
        env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port), "IMPORT_ALLOW_PRIVATE_URLS": "true"}
    )
    app.send_task("automations.run_digests")
    app.send_task("automations.run_digests")  # a duplicate beat
    wait_for(lambda: len(smtp_server.messages) >= 3, timeout=60, what="the digest delivered to three readers")
    issue = wait_for(lambda: Issue.objects.filter(status=Issue.Status.SENT).first(), timeout=60, what="sent")
    assert Issue.objects.count() == 1 and FeedDigestRun.objects.get().status == FeedDigestRun.Status.SENT
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == sorted(s.email for s in readers)
    assert "Ferry timetable change number 2" in smtp_server.messages[0].message.get_body(("html",)).get_content()
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 3
