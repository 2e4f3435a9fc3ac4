"""Importing articles: RSS, Atom and JSON, deduplicated by canonical URL/guid, bad items reported by position and
reason, good ones imported; through the service, the management command and the admin page."""

import http.server
import threading
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from newsletter.models import Article
from newsletter.services import importing
from newsletter.services.importing import (
    ImportSourceError,
    articles_import,
    articles_import_from,
    source_read,
    url_check,
)
from tests.factories import ArticleFactory, user_with_perms

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"


def test_rss_import_maps_fields_sanitises_dedupes_and_reports_bad_items():
    report = articles_import_from(str(DATA / "feed.rss"))
    assert [a.headline for a in report.imported] == ["Tram line reopens after repairs", "Library extends opening hours"]
    assert report.duplicates == ["item 2 (“Tram line reopens after repairs (repeated in the feed)”)"]
    assert report.errors == ["item 3: has no headline/title"]

    tram = Article.objects.get(guid="hcc-1001")
    assert tram.canonical_url == "https://harbourcity.example/news/tram-reopens"
    assert tram.byline == "Lucas Ferreira"
    assert tram.section == "Transport" and tram.tags == "Transport, trams"
    assert tram.image_url == "https://harbourcity.example/media/tram.jpg"
    assert tram.published_at == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert tram.dek == "The No. 4 tram is running again."
    assert '<a href="https://harbourcity.example/trams" rel="noopener noreferrer">on its route</a>' in tram.body_html
    assert "script" not in tram.body_html and "onclick" not in tram.body_html
    assert tram.slug == "tram-line-reopens-after-repairs"
    library = Article.objects.get(guid="hcc-1003")
    assert library.image_url == "https://harbourcity.example/media/library.jpg"
    assert library.body_html == "<p>Open until 9pm on weekdays.</p>"


def test_import_twice_skips_everything_already_stored():
    articles_import_from(str(DATA / "feed.rss"))
    count = Article.objects.count()
    again = articles_import_from(str(DATA / "feed.rss"))
    assert again.imported == [] and Article.objects.count() == count
    assert len(again.duplicates) == 3


def test_dedupe_against_an_article_typed_in_by_canonical_url():
    ArticleFactory(canonical_url="https://harbourcity.example/news/library-hours", guid="")
    report = articles_import_from(str(DATA / "feed.rss"))
    assert [a.headline for a in report.imported] == ["Tram line reopens after repairs"]
    assert "item 4 (“Library extends opening hours”)" in report.duplicates


def test_atom_import():
    report = articles_import_from(str(DATA / "feed.atom"))
    (bridge,) = report.imported
    assert bridge.headline == "Bridge inspection finds no faults"
    assert bridge.byline == "Amara Okafor"
    assert bridge.body_html == "<p>The Quay bridge <em>passed</em> its five-yearly inspection.</p>"
    assert bridge.dek == "Engineers gave the Quay bridge a clean bill of health."


def test_json_import_imports_good_items_and_says_what_is_wrong_with_bad_ones():
    report = articles_import_from(str(DATA / "articles.json"))
    assert [a.headline for a in report.imported] == ["Council Approves Ferry Expansion", "Hospital waits fall"]
    errors = "\n".join(report.errors)
    assert "item 2 (“No address”): canonical_url: Enter a valid URL." in errors
    assert "item 3: has no headline/title" in errors
    assert "item 4 (“Bad facts”): key_facts:" in errors
    assert "item 5: is not an object" in errors
    assert "item 6 (“Bad date”): published_at: Enter a valid date/time." in errors
    assert len(report.errors) == 5

    ferry = Article.objects.get(canonical_url="https://harbourcity.example/news/ferry-expansion")
    assert ferry.key_facts == ["Councillors voted 9 to 6.", "The plan costs 84 million."]
    assert ferry.tags == "transport, ferries" and ferry.image_alt == "A ferry at the Quay Street terminal"
    assert "<strong>approved</strong>" in ferry.body_html and "<li>two routes</li>" in ferry.body_html
    assert ferry.commentary_html == '<p>Ambitious, and overdue.</p><img src="x">'
    assert ferry.bottom_line == "The ferries are coming."
    assert Article.objects.get(guid="hw-1").body_html == "<p>Waits fell.</p>"


def test_unreadable_sources_say_why():
    with pytest.raises(ImportSourceError, match="not valid JSON: Expecting"):
        articles_import(b'{"articles": [', "json", name="broken.json")
    with pytest.raises(ImportSourceError, match="not an RSS or Atom feed"):
        articles_import(b"<html><body>not a feed</body>", "rss", name="page.html")
    with pytest.raises(ImportSourceError, match="No such file: /nonexistent.rss"):
        articles_import_from("/nonexistent.rss")
    with pytest.raises(ImportSourceError, match="expected a list of articles"):
        articles_import(b'{"items": 3}', "json", name="odd.json")


class FeedHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/newsletter/data; /redirect?to=URL answers 302 to URL. Records every path requested."""

    requested: list[str]

    def do_GET(self):
        self.requested.append(self.path)
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def feed_server():
    """A real HTTP server on loopback serving the test feeds; yields its base URL and the paths it was asked for."""
    requested: list[str] = []
    handler = partial(type("Handler", (FeedHandler,), {"requested": requested}), directory=str(DATA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", requested
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_private_urls(settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "IMPORT_ALLOW_PRIVATE_URLS": True}


def test_import_from_a_url_over_http(feed_server, allow_private_urls):
    base, _ = feed_server
    report = articles_import_from(f"{base}/feed.atom")
    assert [a.headline for a in report.imported] == ["Bridge inspection finds no faults"]
    with pytest.raises(ImportSourceError, match="Could not fetch .*404"):
        articles_import_from(f"{base}/missing.rss")


def test_a_loopback_url_is_refused_by_default_and_never_fetched(feed_server):
    base, requested = feed_server
    with pytest.raises(ImportSourceError) as info:
        articles_import_from(f"{base}/feed.atom")
    assert str(info.value) == (
        f"Refusing to import from {base}/feed.atom: 127.0.0.1 is a loopback address. Only "
        "feeds on the public internet can be imported by URL; download the file and upload it instead."
    )
    assert requested == [] and Article.objects.count() == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:8000/feed.rss", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://10.1.2.3/feed.rss", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/feed.rss", "192.168.0.10 is a private address"),
        ("http://172.16.5.4:8080/feed.rss", "172.16.5.4 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]/feed.rss", "::1 is a loopback address"),
        ("http://[fe80::1]/feed.rss", "fe80::1 is a link-local address"),
        ("http://[fd00::7]/feed.rss", "fd00::7 is a private address"),
        ("http://[::ffff:127.0.0.1]/feed.rss", "::ffff:127.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("http://0.0.0.0/feed.rss", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/feed.rss", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/feed.rss", "240.0.0.1 is a reserved address"),
        ("http://100.64.0.1/feed.rss", "100.64.0.1 is a non-public address"),
        # 127.0.0.1 written as one number
        ("http://2130706433/feed.rss", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_internal_addresses_are_refused_with_the_reason(url, reason):
    with pytest.raises(ImportSourceError, match="^Refusing to import from") as info:
        url_check(url)
    assert reason in str(info.value)


def test_public_addresses_pass_the_check():
    for url in ("http://93.184.215.14/feed.rss", "https://[2606:4700:4700::1111]:8443/feed.rss"):
        url_check(url)  # IP literals: resolved without DNS


def test_only_http_and_https_urls_are_fetched(allow_private_urls):
    for url in ("ftp://harbourcity.example/feed.rss", "file:///etc/passwd", "gopher://127.0.0.1:70/"):
        with pytest.raises(ImportSourceError, match="only http:// and https:// URLs can be fetched"):
            source_read(url)


def test_a_redirect_to_another_scheme_is_refused(feed_server, allow_private_urls):
    base, requested = feed_server
    with pytest.raises(ImportSourceError, match="ftp://127.0.0.1/feed.rss: only http:// and https://"):
        articles_import_from(f"{base}/redirect?to=ftp://127.0.0.1/feed.rss")
    assert requested == ["/redirect?to=ftp://127.0.0.1/feed.rss"]


def test_the_connection_checks_the_address_it_reached(feed_server, monkeypatch):
    """DNS rebinding: the name resolved to a public address when checked, then to loopback when connecting. The
    connection refuses it before sending the request."""
    base, requested = feed_server
    monkeypatch.setattr(importing, "_resolve", lambda host, port: ["93.184.215.14"])
    url = base.replace("127.0.0.1", "localhost") + "/feed.atom"
    with pytest.raises(ImportSourceError, match=r": localhost connected to (127\.0\.0\.1|::1), a loopback address"):
        articles_import_from(url)
    assert requested == []


def test_admin_import_shows_the_refusal_to_the_editor(client, feed_server):
    base, requested = feed_server
    client.force_login(user_with_perms("editor", "add_article", "view_article"))
    response = client.post(reverse("admin:newsletter_article_import"), {"url": f"{base}/feed.atom", "format": ""})
    assert response.status_code == 200
    assert "127.0.0.1 is a loopback address. Only feeds on the public internet" in response.content.decode()
    assert requested == [] and Article.objects.count() == 0


def test_management_command_imports_and_exits_nonzero_on_bad_items(capsys):
    call_command("import_articles", str(DATA / "feed.atom"), "--format", "rss")
    out = capsys.readouterr().out
    assert "imported: Bridge inspection finds no faults" in out and "1 imported" in out

    with pytest.raises(CommandError, match="1 item\\(s\\) could not be imported"):
        call_command("import_articles", str(DATA / "feed.rss"))
    captured = capsys.readouterr()
    assert "not imported: item 3: has no headline/title" in captured.err
    assert "2 imported" in captured.out
    assert Article.objects.filter(guid="hcc-1003").exists()

    with pytest.raises(CommandError, match="No such file"):
        call_command("import_articles", "/nonexistent.json")


def test_admin_import_page_uploads_a_file(client):
    client.force_login(user_with_perms("editor", "add_article", "view_article", "change_article"))
    url = reverse("admin:newsletter_article_import")
    assert client.get(url).status_code == 200
    assert url in client.get(reverse("admin:newsletter_article_changelist")).content.decode()
    upload = SimpleUploadedFile("articles.json", (DATA / "articles.json").read_bytes(), "application/json")
    response = client.post(url, {"file": upload, "format": ""})
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 imported, 0 already present (skipped), 5 could not be imported." in page
    assert "canonical_url: Enter a valid URL." in page
    assert Article.objects.count() == 2


def test_admin_import_form_needs_exactly_one_source(client):
    client.force_login(user_with_perms("editor", "add_article", "view_article"))
    response = client.post(reverse("admin:newsletter_article_import"), {"url": "", "format": "rss"})
    assert "Give either a feed URL or a file" in response.content.decode()
    assert Article.objects.count() == 0


def test_admin_import_needs_add_permission(client):
    client.force_login(user_with_perms("viewer", "view_article"))
    url = reverse("admin:newsletter_article_import")
    upload = SimpleUploadedFile("feed.rss", (DATA / "feed.rss").read_bytes())
    assert client.post(url, {"file": upload}).status_code == 403
    assert client.get(url).status_code == 403
    assert Article.objects.count() == 0
