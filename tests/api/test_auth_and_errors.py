"""Tokens (hashed, revocable, last-used), permissions per token, and the problem-details shape of every error."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken, token_digest
from api.services.tokens import api_token_create, api_token_revoke
from tests.factories import EDITOR_PERMS, ArticleFactory, IssueFactory, user_with_perms

from .conftest import ApiClient, assert_problem

pytestmark = pytest.mark.django_db


def test_token_is_stored_only_as_a_digest_and_records_last_use(newsletter):
    user = user_with_perms("cms", "view_newsletter")
    token, raw = api_token_create(user, "CMS")
    row = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("mh_") and len(raw) > 40
    assert row.digest == token_digest(raw) and raw not in (row.digest, row.prefix) and raw.startswith(row.prefix)
    assert row.last_used_at is None

    response = ApiClient(raw).call("GET", "/newsletters/")
    assert response.status_code == 200 and response.json()[0]["slug"] == "daily-brief"
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer mh_not-a-real-token", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_wrong_token_is_a_401_problem(client, header, newsletter):
    response = client.get("/api/v1/newsletters/", headers={"Authorization": header} if header else {})
    problem = assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in problem["detail"]


def test_revoked_token_and_inactive_user_are_refused(newsletter):
    user = user_with_perms("cms", "view_newsletter")
    token, raw = api_token_create(user, "CMS")
    client = ApiClient(raw)
    assert client.call("GET", "/newsletters/").status_code == 200
    assert api_token_revoke(token) and not api_token_revoke(token)
    assert_problem(client.call("GET", "/newsletters/"), 401)

    _other, raw2 = api_token_create(user, "second")
    user.is_active = False
    user.save()
    assert_problem(ApiClient(raw2).call("GET", "/newsletters/"), 401)


def test_an_editors_token_can_compose_but_not_send(token_for, newsletter):
    editor = token_for("editor", *EDITOR_PERMS)
    article = ArticleFactory()
    created = editor.call(
        "POST", "/issues/", {"newsletter": "daily-brief", "subject": "Hi", "articles": [{"id": article.pk}]}
    )
    assert created.status_code == 201
    issue_id = created.json()["id"]
    problem = assert_problem(editor.call("POST", f"/issues/{issue_id}/send"), 403)
    assert "newsletter.send_issue" in problem["detail"]
    assert editor.call("GET", f"/issues/{issue_id}").json()["status"] == "draft"


def test_subscriber_data_needs_the_subscriber_permissions(token_for, newsletter):
    editor = token_for("editor", *EDITOR_PERMS)
    for method, path in [
        ("GET", "/subscribers/"),
        ("GET", "/subscribers/lookup?email=a@example.com"),
        ("GET", "/subscribers/1/export"),
        ("DELETE", "/subscribers/1"),
        ("GET", "/suppressions/"),
    ]:
        assert_problem(editor.call(method, path), 403)
    problem = assert_problem(
        editor.call(
            "POST", "/subscribers/", {"email": "a@example.com", "newsletter": "daily-brief", "consent_text": "ok"}
        ),
        403,
    )
    assert "subscribers.add_subscriber" in problem["detail"]

    reader = token_for("support", "view_subscriber")
    assert reader.call("GET", "/subscribers/").status_code == 200
    assert_problem(reader.call("DELETE", "/subscribers/1"), 403)  # viewing is not erasing


def test_not_found_is_a_problem_for_unknown_objects_and_unknown_paths(admin_api):
    assert_problem(admin_api.call("GET", "/issues/999999"), 404)
    assert_problem(admin_api.call("GET", "/articles/no-such-story"), 404)
    assert_problem(admin_api.call("GET", "/no/such/endpoint"), 404)
    strict = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {admin_api.token}")
    response = strict.post("/api/v1/articles", {"headline": "x"}, content_type="application/json")
    problem = assert_problem(response, 404)  # not the CSRF failure page
    assert "Did you mean /api/v1/articles/" in problem["detail"]


def test_validation_errors_are_422_with_a_message_per_field(admin_api, newsletter):
    response = admin_api.call(
        "POST", "/issues/", {"newsletter": "daily-brief", "subject": "", "articles": [{"id": "x"}]}
    )
    problem = assert_problem(response, 422, field="subject")
    fields = {e["field"]: e for e in problem["errors"]}
    assert "articles.0.id" in fields and fields["articles.0.id"]["location"] == "body"
    assert problem["type"] == "urn:masthead:problem:validation"

    problem = assert_problem(admin_api.call("GET", "/subscribers/?limit=100000"), 422, field="limit")
    assert [e["location"] for e in problem["errors"]] == ["query"]

    # Rules beyond the schema come back the same way: an unknown article, a newsletter that does not exist.
    unknown_article = {"newsletter": "daily-brief", "subject": "S", "articles": [{"id": 424242}]}
    assert_problem(admin_api.call("POST", "/issues/", unknown_article), 422, field="articles.0.id")
    assert_problem(admin_api.call("POST", "/issues/", {"newsletter": "nope", "subject": "S"}), 422, field="newsletter")


def test_text_the_database_cannot_store_is_bad_input_not_a_500(admin_api):
    problem = assert_problem(
        admin_api.call("PUT", "/articles/story-1", {"headline": "a\u0000b"}), 422, field="headline"
    )
    assert "NUL" in problem["errors"][0]["message"]
    assert_problem(admin_api.call("PUT", "/articles/story-1", '{"headline": "\\ud800"}'), 422, field="headline")


def test_malformed_json_is_a_400_problem(admin_api):
    assert_problem(admin_api.call("PUT", "/articles/story-1", "{not json"), 400)


def test_state_conflicts_are_409(admin_api, newsletter):
    issue = IssueFactory(newsletter=newsletter, status="sent", frozen_at=timezone.now(), started_at=timezone.now())
    problem = assert_problem(admin_api.call("PATCH", f"/issues/{issue.pk}", {"subject": "Changed"}), 409)
    assert "only a draft" in problem["detail"]
    assert_problem(admin_api.call("POST", f"/issues/{issue.pk}/pause"), 409)


def test_rate_limit_per_token_is_a_429_with_retry_after(token_for, settings, newsletter):
    settings.MASTHEAD = {**settings.MASTHEAD, "API_RATE_PER_TOKEN": "3/m"}
    first = token_for("busy", "view_newsletter")
    second = token_for("calm", "view_newsletter")
    assert [first.call("GET", "/newsletters/").status_code for _ in range(3)] == [200, 200, 200]
    response = first.call("GET", "/newsletters/")
    assert_problem(response, 429)
    assert int(response["Retry-After"]) >= 1
    assert second.call("GET", "/newsletters/").status_code == 200  # per token, not global


def test_failed_authentication_is_rate_limited_per_client(client, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "API_AUTH_FAILURES_PER_IP": "2/m"}
    statuses = [
        client.get("/api/v1/newsletters/", headers={"Authorization": "Bearer mh_guess"}).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_openapi_document_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Masthead API"
    assert "/api/v1/subscribers/" in schema["paths"]
    assert schema["paths"]["/api/v1/issues/{issue_id}/send"]["post"]["responses"]["403"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert client.get("/api/v1/docs").status_code == 200


def test_admin_shows_a_new_token_once_and_revokes_it(admin_client, admin_user, newsletter):
    response = admin_client.post(reverse("admin:api_apitoken_add"), {"user": admin_user.pk, "name": "CMS"})
    assert response.status_code == 200
    token = ApiToken.objects.get()
    raw = response.context["plaintext"]
    assert raw in response.content.decode() and token.digest == token_digest(raw)
    assert raw not in admin_client.get(reverse("admin:api_apitoken_change", args=[token.pk])).content.decode()
    assert ApiClient(raw).call("GET", "/newsletters/").status_code == 200

    admin_client.post(
        reverse("admin:api_apitoken_changelist"), {"action": "revoke_selected", "_selected_action": [token.pk]}
    )
    assert_problem(ApiClient(raw).call("GET", "/newsletters/"), 401)


def test_staff_cannot_mint_a_token_for_someone_else(client, admin_user):
    clerk = user_with_perms("clerk", "add_apitoken", "view_apitoken")
    client.force_login(clerk)
    response = client.post(reverse("admin:api_apitoken_add"), {"user": admin_user.pk, "name": "escalate"})
    assert response.status_code == 200 and not ApiToken.objects.exists()  # the form offers only themselves
    client.post(reverse("admin:api_apitoken_add"), {"user": clerk.pk, "name": "mine"})
    assert ApiToken.objects.get().user == clerk
