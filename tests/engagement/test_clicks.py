"""Tracked links in-process: rewritten in the message, redirected only to the issue's own URLs, counted per link
and variant by the flush, never rewritten for our own pages."""

import io
import re
import time
from urllib.parse import urlsplit

import pytest

from config.wsgi import application
from engagement import tokens
from engagement.models import Link, Tally, Verdict
from engagement.services import hits, stats
from newsletter.models import Delivery, TrackingMode
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}


def _path(url: str) -> str:
    return urlsplit(url).path


def _send(smtp_server, start, drain, mode=TrackingMode.AGGREGATE, readers=3, pixel=False):
    issue = issue_to_send()
    issue.newsletter.tracking_mode = mode
    issue.newsletter.tracking_pixel = pixel
    issue.newsletter.save()
    subscribers_bulk(issue.newsletter, readers)
    start(issue)
    drain(issue)
    return issue


def _later(seconds: float = 60):
    """Flush as if `seconds` had passed (hits settle, and are well past the machine window)."""
    return time.time() + seconds


def test_links_are_rewritten_and_redirect_to_the_issue_urls_only(
    smtp_server, start, drain, parse, client, tracked_links, settings
):
    issue = _send(smtp_server, start, drain)
    assert issue.tracking_mode == TrackingMode.AGGREGATE
    urls = dict(Link.objects.filter(issue=issue).values_list("number", "url"))
    assert "https://news.example.org/story-0" in urls.values()
    message = parse(smtp_server.to("reader0@example.com")[0].data)
    html_links, text_links = tracked_links(message)
    assert html_links and text_links
    html = message.get_body(("html",)).get_content()
    assert "https://news.example.org/story-0" not in html  # every story link goes through the redirect
    assert "%%MH_" not in html
    # Unsubscribe, preferences and the web version stay direct links to our own pages.
    hrefs = re.findall(r'href="([^"]+)"', html)
    own = [h for h in hrefs if h.startswith(settings.SITE_URL) and "/r/" not in h]
    assert any("/u/" in h for h in own) and any("/preferences/" in h for h in own)
    assert not [h for h in hrefs if "news.example.org" in h]  # every story link goes through the redirect
    for url in html_links:
        hit = tokens.hit_parse(_path(url).removeprefix("/r/"))
        assert hit is not None and hit.issue_id == issue.pk and hit.delivery_id == 0
    response = client.get(_path(html_links[0]), **BROWSER)
    assert response.status_code == 302 and response["Location"] in urls.values()
    response = client.get(_path(text_links[0]), **BROWSER)
    assert response.status_code == 302 and response["Location"] in urls.values()


def test_forged_and_foreign_tokens_get_the_friendly_page(smtp_server, start, drain, parse, client, tracked_links):
    first = _send(smtp_server, start, drain)
    url = tracked_links(parse(smtp_server.to("reader0@example.com")[0].data))[0][0]
    link, reader = _path(url).removeprefix("/r/").split(".")
    # Another issue's reader half with this issue's link half: refused (the halves are signed together).
    other_reader = tokens.reader_part(first.pk + 1000)
    for token in (
        f"{link}.{other_reader}",
        f"{link}.{reader[:4]}{'A' if reader[4] != 'A' else 'B'}{reader[5:]}",  # a character in the middle
        f"{link}.{reader[:-1]}{'A' if reader[-1] != 'A' else 'B'}",  # the last one (its spare bits included)
        link,
        "nonsense",
        f"{tokens.link_part(first.pk, 999)}.{reader}",  # signed, but no such link in the issue
    ):
        response = client.get(f"/r/{token}", **BROWSER)
        assert response.status_code == 404, token
        assert b"This link does not work" in response.content
        assert "Location" not in response


def test_clicks_are_counted_per_link_and_variant_by_the_flush(
    smtp_server, start, drain, parse, client, tracked_links, settings
):
    # The clicks come a moment after the send, not seconds later as a reader's would: no machine window here.
    settings.MASTHEAD = {**settings.MASTHEAD, "ENGAGEMENT_MACHINE_SECONDS": 0}
    issue = _send(smtp_server, start, drain, readers=4)
    Delivery.objects.filter(issue=issue, subscriber__email="reader3@example.com").update(variant=1)
    first = tracked_links(parse(smtp_server.to("reader0@example.com")[0].data))[0][0]
    assert client.get(_path(first), **BROWSER).status_code == 302
    assert client.get(_path(first), **BROWSER).status_code == 302
    assert Tally.objects.count() == 0  # nothing written on the request path
    result = hits.hits_flush(now=_later())
    assert result.hits == 2
    assert hits.hits_flush(now=_later()).hits == 0  # flushing twice counts nothing twice
    tally = Tally.objects.get(issue=issue)
    assert (tally.count, tally.verdict, tally.variant) == (2, Verdict.HUMAN, 0)
    counts = stats.variant_counts(issue)
    assert counts[0].human_clicks == 2 and counts[0].delivered == 3
    assert counts[1].delivered == 1 and counts[1].human_clicks == 0


def test_tracking_off_rewrites_nothing(smtp_server, start, drain, parse, tracked_links):
    issue = _send(smtp_server, start, drain, mode=TrackingMode.OFF)
    assert issue.tracking_mode == TrackingMode.OFF and not Link.objects.filter(issue=issue).exists()
    message = parse(smtp_server.to("reader0@example.com")[0].data)
    assert tracked_links(message) == ([], [])
    assert "https://news.example.org/story-0" in message.get_body(("html",)).get_content()


def test_the_pixel_is_off_by_default(smtp_server, start, drain, parse):
    issue = _send(smtp_server, start, drain)
    html = parse(smtp_server.to("reader0@example.com")[0].data).get_body(("html",)).get_content()
    assert "/o/" not in html and not issue.tracking_pixel


def test_the_open_pixel_counts_when_on(smtp_server, start, drain, parse, client):
    issue = _send(smtp_server, start, drain, pixel=True)
    html = parse(smtp_server.to("reader0@example.com")[0].data).get_body(("html",)).get_content()
    (src,) = [part.split('"')[0] for part in html.split('src="')[1:] if "/o/" in part.split('"')[0]]
    response = client.get(_path(src), **BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    hits.hits_flush(now=_later())
    assert Tally.objects.get(issue=issue).link_number == 0


def test_the_wsgi_fast_path_redirects_known_links_and_leaves_the_rest_to_django(
    smtp_server, start, drain, parse, tracked_links
):
    issue = _send(smtp_server, start, drain)
    url = tracked_links(parse(smtp_server.to("reader0@example.com")[0].data))[0][0]
    answers = []

    def call(path: str, method: str = "GET") -> bytes:
        environ = {
            "PATH_INFO": path, "REQUEST_METHOD": method, "REMOTE_ADDR": "198.51.100.9", "SERVER_NAME": "testserver",
            "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
            "HTTP_HOST": "testserver", "HTTP_USER_AGENT": BROWSER["HTTP_USER_AGENT"],
        }  # fmt: skip
        body = b"".join(application(environ, lambda status, headers: answers.append((status, dict(headers)))))
        return body

    call(_path(url))
    status, headers = answers[-1]
    assert status.startswith("302") and headers["Location"] in set(
        Link.objects.filter(issue=issue).values_list("url", flat=True)
    )
    assert "no-store" in headers["Cache-Control"] and "Server" not in headers
    assert b"This link does not work" in call(_path(url)[:-3] + "xyz")  # forged: Django's friendly page
    assert answers[-1][0].startswith("404")
    assert hits.hits_flush(now=_later()).hits == 1
