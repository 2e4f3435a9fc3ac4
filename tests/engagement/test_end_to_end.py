"""The three tracking modes end to end: a real Celery worker sends the issue to a real SMTP server, headless
Chromium opens the received message and clicks a story, the worker's flush counts it, and the report shows it,
at phone and desktop width. A scanner's burst over every link is counted as machine."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from celery import current_app
from django.contrib.auth import get_user_model

from engagement.models import Event, Tally, Verdict
from engagement.services import hits
from engagement.services.consent import reader_tracking_grant
from newsletter.models import Issue, TrackingMode
from newsletter.services import sending
from subscribers.models import ConsentEvent
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = [pytest.mark.browser, pytest.mark.worker]

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
STORY = "https://news.example.org/story-1"
READER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def _counted(issue) -> dict[int, int]:
    hits.buffer_push()  # this process served the clicks (the live server): hand them to Redis now
    current_app.send_task("engagement.flush")
    by_verdict: dict[int, int] = {}
    for verdict, count in Tally.objects.filter(issue=issue).values_list("verdict", "count"):
        by_verdict[verdict] = by_verdict.get(verdict, 0) + count
    return by_verdict


@pytest.mark.parametrize("mode", [TrackingMode.OFF, TrackingMode.AGGREGATE, TrackingMode.PER_READER])
def test_a_reader_clicks_a_story_in_the_received_message_and_the_report_shows_it(
    mode, browser, live_server, smtp_server, celery_worker, wait_for, screenshot_dir, quiet_smtp_log
):
    issue = issue_to_send()
    issue.newsletter.tracking_mode = mode
    issue.newsletter.save()
    readers = subscribers_bulk(issue.newsletter, 3)
    reader_tracking_grant(readers[0], issue.newsletter, ConsentEvent.Source.LINK)
    # The browser clicks a moment after the send: no machine window for this reader (the burst rule stays).
    celery_worker(
        env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": smtp_server.port, "SITE_URL": live_server.url,
             "ENGAGEMENT_MACHINE_SECONDS": "0"},
    )  # fmt: skip
    # Headless Chromium says so in its user agent, as scanners built on it do: this one is a person's browser.
    context = browser.new_context(user_agent=READER_AGENT)
    page = context.new_page()
    sending.issue_send_now(issue)
    wait_for(lambda: len(smtp_server.messages) == 3, timeout=90, what="the issue at three readers")
    wait_for(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, timeout=60, what="the send to end")

    # The reader opens the message they received and clicks the second story's headline.
    message = smtp_server.to("reader0@example.com")[0].message
    html = message.get_body(("html",)).get_content()
    page.route("https://news.example.org/**", lambda route: route.fulfill(body="<h1>The story</h1>"))
    page.set_viewport_size(PHONE)
    page.set_content(html)
    page.get_by_role("link", name="Story 1: council weighs budget").first.click()
    page.wait_for_url(STORY)
    assert page.get_by_role("heading", name="The story").is_visible()

    if mode == TrackingMode.OFF:
        assert f"{live_server.url}/r/" not in html
        time.sleep(1)
        assert _counted(issue) == {}
    else:
        wait_for(lambda: _counted(issue).get(Verdict.HUMAN) == 1, timeout=30, what="the click counted")
        if mode == TrackingMode.PER_READER:
            assert list(Event.objects.values_list("subscriber_id", flat=True)) == [readers[0].pk]
        else:
            assert not Event.objects.exists()

        # A scanner fetches every link of another reader's message within a second: counted as machine.
        scanned = smtp_server.to("reader1@example.com")[0].message.get_body(("html",)).get_content()
        tracked = sorted(set(re.findall(rf'href="({re.escape(live_server.url)}/r/[^"]+)"', scanned)))
        agent = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0"}
        with ThreadPoolExecutor(len(tracked)) as pool:  # all at once, as a scanner fetches them
            answers = list(
                pool.map(lambda url: requests.get(url, headers=agent, allow_redirects=False, timeout=10), tracked)
            )
        assert {a.status_code for a in answers} == {302}
        wait_for(lambda: _counted(issue).get(Verdict.MACHINE) == len(tracked), timeout=30, what="the scan counted")
        assert _counted(issue).get(Verdict.HUMAN) == 1

    # The editor's report, at phone and desktop width.
    get_user_model().objects.create_superuser("editor", "editor@example.org", "pw")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/engagement/issue/{issue.pk}/")
    page.get_by_label("Username").fill("editor")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Clicks per story").first.wait_for()
    for size, name in ((PHONE, "375"), (DESKTOP, "1280")):
        page.set_viewport_size(size)
        page.screenshot(path=screenshot_dir / f"engagement-report-{mode}-{name}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], f"scrolls sideways at {name}"
        svg = page.locator("svg[role=img]").first.bounding_box()
        assert svg["width"] <= size["width"] and svg["width"] > 200
    if mode == TrackingMode.OFF:
        assert page.get_by_text("No story links.").is_visible()
        context.close()
        return
    stories = page.get_by_role("table").filter(has_text="Story 1: council weighs budget").first
    row = stories.get_by_role("row").filter(has_text="Story 1: council weighs budget").first
    assert row.get_by_role("cell").first.inner_text().strip() == "1"
    context.close()
