import re

import pytest

from engagement.services import hits, links

CLICK = re.compile(r"https?://[^\s\"<>]+/r/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest.fixture(autouse=True)
def _fresh_engagement_state():
    """Per-process caches keyed by issue id, and the shared hit queue, start empty in every test."""
    links.link_target.cache_clear()
    links.issue_tracking.cache_clear()
    client = hits.redis_client()
    if client is not None:
        client.delete(hits.QUEUE_KEY, hits.LOCK_KEY)
    yield
    links.link_target.cache_clear()
    links.issue_tracking.cache_clear()


@pytest.fixture
def tracked_links():
    """tracked_links(message): the tracked URLs of an EmailMessage's HTML part, in order, and of its text part."""

    def find(message) -> tuple[list[str], list[str]]:
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        return CLICK.findall(html), CLICK.findall(text)

    return find
