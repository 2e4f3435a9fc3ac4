"""Idempotency-Key on creates: a retried CMS call adds nothing and gets the first answer again."""

import pytest

from api.models import IdempotencyKey
from newsletter.models import Article, Issue
from subscribers.models import ConsentEvent, Subscriber
from tests.factories import ArticleFactory

from .conftest import assert_problem

pytestmark = pytest.mark.django_db


def test_a_retried_create_replays_the_first_answer(admin_api, newsletter):
    article = ArticleFactory()
    payload = {"newsletter": "daily-brief", "subject": "Tuesday", "articles": [{"id": article.pk}]}
    first = admin_api.call("POST", "/issues/", payload, **{"Idempotency-Key": "cms-run-77"})
    again = admin_api.call("POST", "/issues/", payload, **{"Idempotency-Key": "cms-run-77"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Issue.objects.count() == 1

    # Without a key every call is a new issue: that is what the key is for.
    admin_api.call("POST", "/issues/", payload)
    assert Issue.objects.count() == 2


def test_a_retried_signup_records_consent_once(admin_api, newsletter):
    payload = {"email": "reader@example.com", "newsletter": "daily-brief", "consent_text": "Yes please"}
    answers = [admin_api.call("POST", "/subscribers/", payload, **{"Idempotency-Key": "signup-1"}) for _ in range(3)]
    assert {a.status_code for a in answers} == {202}
    assert len({a.content for a in answers}) == 1
    assert Subscriber.objects.count() == 1 and ConsentEvent.objects.filter(kind="subscribe").count() == 1


def test_the_same_key_with_another_body_is_refused(admin_api):
    body = {"external_id": "x-1", "headline": "One"}
    assert admin_api.call("POST", "/articles/", body, **{"Idempotency-Key": "k"}).status_code == 201
    problem = assert_problem(
        admin_api.call("POST", "/articles/", {**body, "external_id": "x-2"}, **{"Idempotency-Key": "k"}), 422
    )
    assert problem["type"] == "urn:masthead:problem:idempotency-key-reused"
    assert Article.objects.count() == 1


def test_keys_belong_to_a_user_and_a_failed_create_keeps_no_key(admin_api, token_for):
    other = token_for("other-cms", "add_article", "view_article")
    body = {"external_id": "y-1", "headline": "One"}
    assert admin_api.call("POST", "/articles/", body, **{"Idempotency-Key": "shared"}).status_code == 201
    # Another user's identical key is a different request (and here a real conflict: the id exists).
    assert_problem(other.call("POST", "/articles/", body, **{"Idempotency-Key": "shared"}), 409)
    assert not IdempotencyKey.objects.filter(user=other.user).exists()  # rolled back with the failed create
    assert_problem(admin_api.call("POST", "/articles/", body, **{"Idempotency-Key": "\u00e9t\u00e9"}), 422)


def test_an_expired_key_is_forgotten(admin_api, settings):
    body = {"external_id": "z-1", "headline": "One"}
    assert admin_api.call("POST", "/articles/", body, **{"Idempotency-Key": "old"}).status_code == 201
    IdempotencyKey.objects.update(created_at="2000-01-01T00:00:00Z")
    assert_problem(admin_api.call("POST", "/articles/", body, **{"Idempotency-Key": "old"}), 409)  # ran again
