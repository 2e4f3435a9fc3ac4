import pytest
from django.core.cache import cache

from .factories import NewsletterFactory


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newsletter(db):
    return NewsletterFactory(name="Daily Brief", slug="daily-brief")


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Short name for pytest-django's on_commit capture (callbacks are the emails a request would queue)."""
    return django_capture_on_commit_callbacks
