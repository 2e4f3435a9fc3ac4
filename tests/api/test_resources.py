"""The resources end to end through the API, each write checked against what the admin's services do."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from newsletter.models import Article, Delivery, Issue
from newsletter.services.importing import articles_import
from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression, email_hash
from subscribers.services.emails import confirmation_send
from tests.factories import ArticleFactory, subscribers_bulk

from .conftest import assert_problem

pytestmark = pytest.mark.django_db

DIRTY = '<p onclick="x()">Council <script>alert(1)</script>votes <a href="javascript:alert(1)">here</a></p>'


def test_newsletters_list_and_read(admin_api, newsletter):
    assert [n["slug"] for n in admin_api.call("GET", "/newsletters/").json()] == ["daily-brief"]
    assert admin_api.call("GET", "/newsletters/daily-brief").json()["name"] == "Daily Brief"
    assert_problem(admin_api.call("GET", "/newsletters/nope"), 404)


def test_article_upsert_by_external_id_is_sanitised_like_an_import(admin_api):
    created = admin_api.call(
        "PUT", "/articles/cms-1042", {"headline": "Council votes", "body_html": DIRTY, "tags": ["city", "vote"]}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["external_id"] == "cms-1042" and body["slug"] == "council-votes" and body["tags"] == "city, vote"
    imported = articles_import(json.dumps([{"headline": "Imported", "body_html": DIRTY}]).encode(), "json")
    assert body["body_html"] == imported.imported[0].body_html  # the same sanitiser, the same result
    assert (
        "script" not in body["body_html"]
        and "onclick" not in body["body_html"]
        and "javascript" not in body["body_html"]
    )

    updated = admin_api.call("PUT", "/articles/cms-1042", {"headline": "Council votes, again", "body_markdown": "# Hi"})
    assert updated.status_code == 200 and updated.json()["id"] == body["id"]
    assert updated.json()["body_html"] == "<h4>Hi</h4>"  # Markdown as the admin renders it
    assert Article.objects.count() == 2
    assert admin_api.call("GET", "/articles/cms-1042").json()["headline"] == "Council votes, again"


def test_article_create_conflicts(admin_api):
    first = {"external_id": "a-1", "headline": "One", "canonical_url": "https://news.example/one"}
    assert admin_api.call("POST", "/articles/", first).status_code == 201
    assert_problem(admin_api.call("POST", "/articles/", first), 409)  # same external id
    same_url = {**first, "external_id": "a-2"}
    problem = assert_problem(admin_api.call("POST", "/articles/", same_url), 409)
    assert "canonical_url" in problem["detail"]
    bad_url = {"external_id": "a-3", "headline": "x", "image_url": "no"}
    bad = assert_problem(admin_api.call("POST", "/articles/", bad_url), 422, field="image_url")
    assert "URL" in bad["detail"]
    assert Article.objects.count() == 1


def test_articles_list_pages_with_a_cursor(admin_api):
    ArticleFactory.create_batch(5)
    first = admin_api.call("GET", "/articles/?limit=2").json()
    second = admin_api.call("GET", f"/articles/?limit=2&cursor={first['next_cursor']}").json()
    third = admin_api.call("GET", f"/articles/?limit=2&cursor={second['next_cursor']}").json()
    ids = [a["id"] for page in (first, second, third) for a in page["items"]]
    assert ids == sorted(Article.objects.values_list("pk", flat=True)) and third["next_cursor"] is None
    assert_problem(admin_api.call("GET", "/articles/?cursor=forged"), 422, field="cursor")


def test_issue_compose_edit_preview(admin_api, newsletter):
    a, b, c = ArticleFactory.create_batch(3)
    payload = {
        "newsletter": "daily-brief",
        "subject": "Tuesday",
        "articles": [{"id": c.pk, "blurb": "Lead"}, {"id": a.pk}],
    }
    created = admin_api.call("POST", "/issues/", payload)
    assert created.status_code == 201
    issue = created.json()
    assert [(i["id"], i["position"], i["blurb"]) for i in issue["articles"]] == [(c.pk, 1, "Lead"), (a.pk, 2, "")]
    assert issue["status"] == "draft" and Issue.objects.get(pk=issue["id"]).created_by.username == "robot"

    edited = admin_api.call("PATCH", f"/issues/{issue['id']}", {"subject": "Wednesday", "articles": [{"id": b.pk}]})
    assert edited.json()["subject"] == "Wednesday" and [i["id"] for i in edited.json()["articles"]] == [b.pk]
    duplicate = {"articles": [{"id": b.pk}, {"id": b.pk}]}
    assert_problem(admin_api.call("PATCH", f"/issues/{issue['id']}", duplicate), 422, field="articles.1.id")

    preview = admin_api.call("GET", f"/issues/{issue['id']}/preview").json()
    assert preview["subject"] == "Wednesday" and b.headline in preview["html"] and b.headline in preview["text"]
    assert "#preview-unsubscribe" in preview["html"]  # a preview never carries a working unsubscribe link


def test_issue_schedule_send_pause_resume_cancel_progress_report(admin_api, newsletter):
    subscribers_bulk(newsletter, 3)
    article = ArticleFactory()
    issue_id = admin_api.call(
        "POST", "/issues/", {"newsletter": "daily-brief", "subject": "S", "articles": [{"id": article.pk}]}
    ).json()["id"]  # noqa: E501

    assert_problem(
        admin_api.call("POST", f"/issues/{issue_id}/schedule", {"at": "2020-01-01T06:00:00+00:00"}), 422, field="at"
    )
    assert_problem(
        admin_api.call("POST", f"/issues/{issue_id}/schedule", {"at": "2099-01-01T06:00:00"}), 422, field="at"
    )
    when = (timezone.now() + timedelta(days=1)).isoformat()
    scheduled = admin_api.call("POST", f"/issues/{issue_id}/schedule", {"at": when}).json()
    assert scheduled["status"] == "scheduled" and scheduled["scheduled_at"]
    assert admin_api.call("POST", f"/issues/{issue_id}/unschedule").json()["status"] == "draft"
    assert_problem(admin_api.call("GET", f"/issues/{issue_id}/report"), 409)

    # Found by the schemathesis run: resuming a draft moved it to sending without freezing it (a 500).
    assert_problem(admin_api.call("POST", f"/issues/{issue_id}/resume"), 409)
    assert admin_api.call("POST", f"/issues/{issue_id}/send").json()["status"] == "sending"
    assert_problem(admin_api.call("POST", f"/issues/{issue_id}/send"), 409)
    assert admin_api.call("POST", f"/issues/{issue_id}/pause").json()["status"] == "paused"
    assert admin_api.call("POST", f"/issues/{issue_id}/resume").json()["status"] == "sending"
    progress = admin_api.call("GET", f"/issues/{issue_id}/progress").json()
    assert progress["status"] == "sending" and progress["total"] == 3
    assert admin_api.call("POST", f"/issues/{issue_id}/cancel").json()["status"] == "cancelled"

    report = admin_api.call("GET", f"/issues/{issue_id}/report").json()
    assert (
        report["status"] == "cancelled" and report["recipients"] == Delivery.objects.filter(issue_id=issue_id).count()
    )


def test_signup_is_double_opt_in_and_never_activates(
    admin_api, newsletter, smtp_server, django_capture_on_commit_callbacks
):
    payload = {
        "email": "New.Reader@Example.COM",
        "name": "New Reader",
        "newsletter": "daily-brief",
        "consent_text": "Yes, send me the Daily Brief.",
        "ip": "203.0.113.7",
        "language": "es",
    }
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_api.call("POST", "/subscribers/", payload)
    assert response.status_code == 202
    body = response.json()
    assert body["outcome"] == "confirmation_sent" and body["subscriber"]["status"] == "pending"
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "New.Reader@example.com" and subscriber.status == Subscriber.Status.PENDING
    event = ConsentEvent.objects.get(kind=ConsentEvent.Kind.SUBSCRIBE)
    assert event.source == "api" and event.consent_text == payload["consent_text"] and event.ip_address == "203.0.113.0"
    assert len(callbacks) == 1  # the confirmation email, queued after commit
    confirmation_send(subscriber, newsletter)
    assert smtp_server.to("New.Reader@example.com")

    assert_problem(admin_api.call("POST", "/subscribers/", {**payload, "email": "not an address"}), 422, field="email")
    assert_problem(admin_api.call("POST", "/subscribers/", {**payload, "consent_text": ""}), 422, field="consent_text")


def test_subscriber_lookup_list_unsubscribe_export_erase(admin_api, newsletter):
    people = subscribers_bulk(newsletter, 5)
    pending = people[4]
    Subscriber.objects.filter(pk=pending.pk).update(status=Subscriber.Status.PENDING)

    found = admin_api.call("GET", f"/subscribers/lookup?email={people[0].email.upper()}").json()
    assert found["id"] == people[0].pk and found["newsletters"] == ["daily-brief"]
    assert_problem(admin_api.call("GET", "/subscribers/lookup?email=nobody@example.com"), 404)

    page = admin_api.call("GET", "/subscribers/?status=active&limit=3").json()
    rest = admin_api.call("GET", f"/subscribers/?status=active&limit=3&cursor={page['next_cursor']}").json()
    assert [s["id"] for s in page["items"] + rest["items"]] == [p.pk for p in people[:4]] and rest[
        "next_cursor"
    ] is None

    out = admin_api.call("POST", f"/subscribers/{people[1].pk}/unsubscribe", {"newsletter": "daily-brief"}).json()
    assert out["changed"] and out["subscriber"]["status"] == "unsubscribed" and out["subscriber"]["newsletters"] == []
    assert not admin_api.call("POST", f"/subscribers/{people[1].pk}/unsubscribe", {}).json()["changed"]
    assert ConsentEvent.objects.filter(kind="unsubscribe", source="api").count() == 1
    assert Subscription.objects.get(subscriber=people[1]).status == "unsubscribed"

    export = admin_api.call("GET", f"/subscribers/{people[2].pk}/export").json()
    assert (
        export["subscriber"]["email"] == people[2].email
        and export["subscriptions"][0]["newsletter_slug"] == "daily-brief"
    )

    erased = admin_api.call("DELETE", f"/subscribers/{people[2].pk}").json()
    assert erased["erased"] and erased["email_hash"] == email_hash(people[2].email)
    assert not Subscriber.objects.filter(pk=people[2].pk).exists()
    assert Suppression.objects.get(email_hash=erased["email_hash"]).reason == "erased"
    assert_problem(admin_api.call("DELETE", f"/subscribers/{people[2].pk}"), 404)


def test_suppressions(admin_api, newsletter):
    person = subscribers_bulk(newsletter, 1)[0]
    created = admin_api.call("POST", "/suppressions/", {"email": person.email, "detail": "asked by phone"})
    assert created.status_code == 201 and created.json()["reason"] == "manual"
    assert Subscriber.objects.get(pk=person.pk).status == Subscriber.Status.SUPPRESSED
    check = admin_api.call("GET", f"/suppressions/check?email={person.email}").json()
    assert check == {"suppressed": True, "reason": "manual", "email_hash": email_hash(person.email)}
    assert admin_api.call("GET", "/suppressions/check?email=free@example.com").json()["suppressed"] is False
    listed = admin_api.call("GET", "/suppressions/?reason=manual").json()
    assert [s["email_hash"] for s in listed["items"]] == [email_hash(person.email)]
    assert "@" not in str(listed)  # hashes only, never an address
