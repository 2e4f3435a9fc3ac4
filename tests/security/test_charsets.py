"""A request body in another charset, or bytes that are not UTF-8, is a plain 400 (a page that renders), never a
500, and never a stored address."""

import pytest

from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token
from tests.factories import NewsletterFactory, subscribed

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def newsletter():
    return NewsletterFactory(slug="daily-brief")


def paths(newsletter) -> list[str]:
    reader = subscribed(newsletter, email="reader@example.com")
    unsubscribe = make_token(Purpose.UNSUBSCRIBE, reader.token, newsletter.slug)
    return [
        f"/subscribe/{newsletter.slug}/",
        f"/subscribe/{newsletter.slug}/embed/",
        "/i18n/setlang/",
        "/admin/login/",
        f"/u/{unsubscribe}/one-click/",
        f"/preferences/{make_token(Purpose.PREFERENCES, reader.token)}/",
    ]


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("latin-1", "email=ÿþú@example.com&name=x&language=en".encode("latin-1")),
        ("utf-16", "email=a@example.com&List-Unsubscribe=One-Click".encode("utf-16")),
        ("x-no-such-charset", b"email=a@example.com"),
    ],
)
def test_a_body_in_another_charset_is_a_400_that_renders(client, newsletter, charset, body):
    client.raise_request_exception = True
    for path in paths(newsletter):
        client.cookies["sessionid"] = "whatever"
        response = client.generic("POST", path, body, content_type=f"{FORM}; charset={charset}")
        assert response.status_code == 400, path
        assert b"UTF-8" in response.content
    assert Subscriber.objects.count() == 1


def test_percent_encoded_bytes_that_are_not_utf8_are_refused_and_never_stored(client, newsletter):
    client.raise_request_exception = True
    body = b"email=%FF%FE%FA%40example.com&name=x"
    response = client.post(f"/subscribe/{newsletter.slug}/embed/", body, FORM)
    assert response.status_code == 400
    assert not Subscriber.objects.exists()


def test_utf8_bodies_still_work(client, newsletter):
    body = "email=zoe@exämple.com&name=Zoë&consent=on".encode()
    response = client.post(f"/subscribe/{newsletter.slug}/embed/", body, f"{FORM}; charset=UTF-8")
    assert response.status_code in (302, 400)  # accepted, or refused by the form: not by the charset guard
    assert b"UTF-8" not in response.content
