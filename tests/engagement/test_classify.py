"""The machine-hit classifier against recorded request patterns (tests/engagement/data/hit_patterns.json), each
sent through the real redirect and pixel and counted by the real flush; a scanner burst; ESP bot flags. Only the
verdict is stored: no row holds an IP address or a user agent."""

import json
import time
from pathlib import Path

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.db import connection
from django.utils import timezone

from engagement import tokens
from engagement.models import Link, Tally, Verdict
from engagement.services import classify, hits
from engagement.services.classify import QueuedHit
from newsletter import delivery
from newsletter.models import Delivery, TrackingMode
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)

PATTERNS = json.loads((Path(__file__).parent / "data" / "hit_patterns.json").read_text())["cases"]
EXPECT = {
    "human": Verdict.HUMAN,
    "machine": Verdict.MACHINE,
    "apple_mpp": Verdict.APPLE_MPP,
    "google_proxy": Verdict.GOOGLE_PROXY,
}


@pytest.fixture
def sent_issue(start, smtp_server, drain):
    issue = issue_to_send()
    issue.newsletter.tracking_mode = TrackingMode.AGGREGATE
    issue.newsletter.tracking_pixel = True
    issue.newsletter.save()
    subscribers_bulk(issue.newsletter, 1)
    start(issue)
    drain(issue)
    return issue


@pytest.mark.parametrize("case", PATTERNS, ids=[c["who"] for c in PATTERNS])
def test_recorded_pattern_gets_its_verdict(case, sent_issue, client, monkeypatch):
    now = time.time()
    reader = tokens.reader_part(sent_issue.pk, 0, int(now - case["after"]))
    if case["kind"] == "open":
        path = f"/o/{tokens.link_part(sent_issue.pk, 0)}.{reader}.gif"
    else:
        path = f"/r/{tokens.link_part(sent_issue.pk, 1)}.{reader}"
    headers = {"REMOTE_ADDR": case["ip"], "HTTP_USER_AGENT": case["ua"], **case.get("headers", {})}
    response = client.generic(case["method"], path, **headers)
    assert response.status_code == (200 if case["kind"] == "open" else 302)
    hits.hits_flush(now=now + 60)
    (tally,) = Tally.objects.filter(issue=sent_issue)
    assert tally.verdict == EXPECT[case["expect"]], case["who"]
    assert tally.link_number == (0 if case["kind"] == "open" else 1)


def test_a_scanner_opening_every_link_of_a_message_within_a_second_is_a_machine(sent_issue, client):
    numbers = list(Link.objects.filter(issue=sent_issue).values_list("number", flat=True))
    assert len(numbers) >= 2  # a small issue: every one of its links within a second is the burst
    # Long after delivery (no timing giveaway), a browser's user agent: only the burst betrays it.
    reader = tokens.reader_part(sent_issue.pk, 0, int(time.time() - 3600))
    agent = {
        "HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
    }
    for number in numbers:
        assert client.get(f"/r/{tokens.link_part(sent_issue.pk, number)}.{reader}", **agent).status_code == 302
    # A person reading the same issue clicks one story.
    person = tokens.reader_part(sent_issue.pk, 0, int(time.time() - 3000))
    client.get(f"/r/{tokens.link_part(sent_issue.pk, numbers[0])}.{person}", **agent)
    hits.hits_flush(now=time.time() + 60)
    by_verdict = {v: 0 for v in Verdict.values}
    for verdict, count in Tally.objects.filter(issue=sent_issue).values_list("verdict", "count"):
        by_verdict[verdict] += count
    assert by_verdict[Verdict.MACHINE] == len(numbers) and by_verdict[Verdict.HUMAN] == 1


def test_a_burst_split_across_two_flushes_is_still_seen_whole():
    base = time.time()
    burst = [QueuedHit(1, n, 0, int(base - 3600), 0, base + n * 0.1, 0) for n in (1, 2, 3)]
    first = classify.verdicts(burst[:1], context=burst[1:])
    assert first == [Verdict.MACHINE]


def test_no_ip_or_user_agent_is_stored_anywhere(sent_issue, client):
    ip, agent = "198.51.100.77", "Mozilla/5.0 UniqueTestAgent/9.9"
    reader = tokens.reader_part(sent_issue.pk, 0, int(time.time() - 600))
    client.get(f"/r/{tokens.link_part(sent_issue.pk, 1)}.{reader}", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    hits.buffer_push()
    queued = hits.redis_client().lrange(hits.QUEUE_KEY, 0, -1)
    assert queued and not any(ip.encode() in r or b"UniqueTestAgent" in r for r in queued)
    hits.hits_flush(now=time.time() + 60)
    with connection.cursor() as cursor:
        for model in ("engagement_tally", "engagement_event", "engagement_pendinghit"):
            cursor.execute(f"SELECT * FROM {model}")
            assert not any(ip in str(row) or "UniqueTestAgent" in str(row) for row in cursor.fetchall())


def test_esp_tracking_events_count_with_their_bot_flags(settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "ENGAGEMENT_MACHINE_SECONDS": 0}
    issue = issue_to_send()
    issue.newsletter.tracking_mode = TrackingMode.AGGREGATE
    issue.newsletter.save()
    delivery.send_start(issue.pk)
    delivery.deliveries_materialise(issue.pk)
    (reader,) = subscribers_bulk(issue.newsletter, 1, start=50)
    row = Delivery.objects.create(
        issue=issue, subscriber=reader, status="sent", sent_at=timezone.now(), message_id="<abc.1@news.example>"
    )
    events = [
        ("opened", {"sg_machine_open": True}, "Mozilla/5.0"),
        ("opened", {"client-info": {"bot": "gmail"}}, "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"),
        ("opened", {}, "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko)"),
        ("clicked", {"client-info": {"bot": "mimecast"}}, "Mozilla/5.0 (Windows NT 10.0) Chrome/124.0"),
    ]
    for event_type, raw, agent in events:
        event = AnymailTrackingEvent(
            event_type=event_type,
            message_id=row.message_id,
            timestamp=timezone.now(),
            user_agent=agent,
            click_url="https://news.example.org/story-0" if event_type == "clicked" else None,
            esp_event=raw,
        )
        tracking.send(sender=object, event=event, esp_name="SendGrid")
    hits.hits_flush(now=time.time() + 60)
    got = {(n, v): c for n, v, c in Tally.objects.filter(issue=issue).values_list("link_number", "verdict", "count")}
    story = Link.objects.get(issue=issue, url="https://news.example.org/story-0").number
    assert got == {
        (0, Verdict.APPLE_MPP): 1,
        (0, Verdict.GOOGLE_PROXY): 1,
        (0, Verdict.HUMAN): 1,
        (story, Verdict.MACHINE): 1,
    }
