import time

import pytest
from django.core import signing
from django.core.cache import cache

from subscribers import links
from subscribers.tokens import Purpose, _salt
from tests.factories import NewsletterFactory
from tests.subscribers.sns import sns_certificates  # noqa: F401  (a fixture for the SES webhook tests)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newsletter(db):
    return NewsletterFactory(
        name="Daily Brief",
        slug="daily-brief",
        from_name="The Newsroom",
        from_email="news@example.org",
        postal_address="1 Press Row, Springfield",
    )


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Short name for pytest-django's on_commit capture (callbacks are the emails a request would queue)."""
    return django_capture_on_commit_callbacks


# --- links as an email would carry them, and tokens signed in the past ------------------------------------------


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.fixture
def path_of():
    """path_of(url): the path (and query) of an absolute link, for the test client."""
    return _path_of


@pytest.fixture
def expired_token():
    """expired_token(purpose, subscriber_token, newsletter="", days_ago=400): correctly signed, `days_ago` old."""

    def sign(purpose: Purpose, subscriber_token, newsletter: str = "", days_ago: int = 400) -> str:
        class PastSigner(signing.TimestampSigner):
            def timestamp(self):
                return signing.b62_encode(int(time.time()) - days_ago * 86400)

        payload = [str(subscriber_token), newsletter] if newsletter else [str(subscriber_token)]
        return PastSigner(salt=_salt(purpose)).sign_object(payload)

    return sign


@pytest.fixture
def unsubscribe_path():
    return lambda subscriber, newsletter: _path_of(links.unsubscribe_url(subscriber.token, newsletter.slug))


@pytest.fixture
def one_click_path():
    return lambda subscriber, newsletter: _path_of(links.one_click_url(subscriber.token, newsletter.slug))


@pytest.fixture
def preferences_path():
    return lambda subscriber: _path_of(links.preferences_url(subscriber.token))


@pytest.fixture
def confirm_path():
    return lambda subscriber, newsletter=None: _path_of(
        links.confirm_url(subscriber.token, newsletter.slug if newsletter else "")
    )
