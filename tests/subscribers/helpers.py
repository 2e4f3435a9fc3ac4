"""Token helpers for tests: links as an email would carry them, and tokens signed in the past."""

import time

from django.core import signing

from subscribers import links
from subscribers.tokens import Purpose, _salt


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def expired_token(purpose: Purpose, subscriber_token, newsletter: str = "", days_ago: int = 400) -> str:
    """A correctly signed token whose timestamp is `days_ago` days old."""

    class PastSigner(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - days_ago * 86400)

    payload = [str(subscriber_token), newsletter] if newsletter else [str(subscriber_token)]
    return PastSigner(salt=_salt(purpose)).sign_object(payload)


def unsubscribe_path(subscriber, newsletter) -> str:
    return path_of(links.unsubscribe_url(subscriber.token, newsletter.slug))


def one_click_path(subscriber, newsletter) -> str:
    return path_of(links.one_click_url(subscriber.token, newsletter.slug))


def preferences_path(subscriber) -> str:
    return path_of(links.preferences_url(subscriber.token))


def confirm_path(subscriber, newsletter=None) -> str:
    return path_of(links.confirm_url(subscriber.token, newsletter.slug if newsletter else ""))
