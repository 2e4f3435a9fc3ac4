"""The home page: every newsletter with its description, a Subscribe link and, when its archive is public, an
Archive link."""

import re

import pytest
from django.urls import resolve, reverse

from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db


def links(html: str) -> list[tuple[str, str]]:
    """(href, text) of every link in the page, in order."""
    found = re.findall(r'<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', html)
    return [(href, re.sub(r"<[^>]+>", "", text).strip()) for href, text in found]


def test_home_lists_newsletters_with_subscribe_and_public_archive_links(client):
    NewsletterFactory(name="Weekend Reads", slug="weekend", description="Long stories <b>for</b> slow mornings.")
    NewsletterFactory(name="Daily Brief", slug="daily", description="", archive_public=False)
    assert resolve("/").view_name == "newsletter:home" and reverse("newsletter:home") == "/"

    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("Daily Brief") < html.index("Weekend Reads")  # by name
    assert "Long stories &lt;b&gt;for&lt;/b&gt; slow mornings." in html
    assert links(html) == [
        ("/subscribe/daily/", "Subscribe"),
        ("/subscribe/weekend/", "Subscribe"),
        ("/archive/weekend/", "Archive"),  # the daily brief's archive is not public: no link
    ]
    assert client.get("/archive/weekend/").status_code == 200


def test_a_long_description_is_shortened(client):
    NewsletterFactory(description=" ".join(f"word{n}" for n in range(200)))
    html = client.get("/").content.decode()
    assert "word44 …" in html and "word45" not in html


def test_home_without_newsletters_says_so(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "There are no newsletters yet." in response.content.decode()
