"""The editor's day in the admin, through Django's test client: compose, reorder, preview, duplicate, read-only
after draft, and the permission checks (403) and POST-only views (405)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from newsletter import placeholders
from newsletter.models import Article, Issue, IssueArticle
from newsletter.services.composing import issue_preview, preview_values
from tests.factories import (
    EDITOR_PERMS,
    ArticleFactory,
    IssueFactory,
    NewsletterFactory,
    issue_with_articles,
    user_with_perms,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client):
    user = user_with_perms("editor", *EDITOR_PERMS)
    user.first_name = "Edith"
    user.save()
    client.force_login(user)
    return user


def inline_data(rows: list[dict], initial: int = 0) -> dict:
    data = {
        "items-TOTAL_FORMS": str(len(rows)),
        "items-INITIAL_FORMS": str(initial),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"items-{i}-{key}"] = "" if value is None else str(value)
    return data


# What the issue form submits for the fields these tests leave as they are (kind, canary).
FORM_DEFAULTS = {
    "kind": "issue", "canary_percent": 0, "canary_minimum": 200, "canary_hold_minutes": 30, "ab_test_percent": 20,
    "ab_wait_minutes": 120,
}  # fmt: skip


def change_data(issue: Issue, rows: list[dict]) -> dict:
    return {
        **FORM_DEFAULTS,
        "newsletter": issue.newsletter_id,
        "subject": issue.subject,
        "preheader": issue.preheader,
        "intro": issue.intro,
        **inline_data(rows, initial=issue.items.count()),
    }


def ordered_headlines(issue: Issue) -> list[str]:
    return [item.article.headline for item in issue.items.order_by("position", "id").select_related("article")]


def test_editor_composes_an_issue_with_articles_and_blurbs(client, editor):
    newsletter = NewsletterFactory()
    first, second = ArticleFactory(), ArticleFactory()
    response = client.post(
        reverse("admin:newsletter_issue_add"),
        {
            **FORM_DEFAULTS,
            "newsletter": newsletter.pk,
            "subject": "Monday briefing",
            "preheader": "Two stories",
            "intro": "Hello.",
            **inline_data(
                [
                    {"position": 2, "article": first.pk, "blurb": ""},
                    {"position": 1, "article": second.pk, "blurb": "Our pick today."},
                ]
            ),
        },
    )
    assert response.status_code == 302, response.context["adminform"].errors if response.context else response
    issue = Issue.objects.get(subject="Monday briefing")
    assert issue.status == Issue.Status.DRAFT and issue.created_by == editor
    assert ordered_headlines(issue) == [second.headline, first.headline]
    assert list(issue.items.values_list("position", flat=True)) == [1, 2]
    assert issue.items.get(article=second).blurb == "Our pick today."


def test_article_autocomplete_finds_articles_for_the_inline(client, editor):
    ArticleFactory(headline="Ferry expansion approved")
    ArticleFactory(headline="Hospital waits fall")
    response = client.get(
        reverse("admin:autocomplete"),
        {"term": "ferry", "app_label": "newsletter", "model_name": "issuearticle", "field_name": "article"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Ferry expansion approved"]


def test_editor_reorders_articles_by_position_and_positions_are_renumbered(client, editor):
    issue = issue_with_articles(3)
    items = list(issue.items.order_by("position"))
    a, b, c = (item.article.headline for item in items)
    rows = [
        {"id": items[0].pk, "issue": issue.pk, "position": 30, "article": items[0].article_id, "blurb": ""},
        {"id": items[1].pk, "issue": issue.pk, "position": 10, "article": items[1].article_id, "blurb": ""},
        {"id": items[2].pk, "issue": issue.pk, "position": 20, "article": items[2].article_id, "blurb": "New note"},
    ]
    response = client.post(reverse("admin:newsletter_issue_change", args=[issue.pk]), change_data(issue, rows))
    assert response.status_code == 302
    assert ordered_headlines(issue) == [b, c, a]
    assert list(issue.items.order_by("position").values_list("position", flat=True)) == [1, 2, 3]
    # the email follows the new order
    html = issue_preview(issue, preview_values(editor)).html
    assert html.index(b) < html.index(c) < html.index(a)
    assert "New note" in html


def test_editor_removes_an_article_from_a_draft(client, editor):
    issue = issue_with_articles(2)
    items = list(issue.items.order_by("position"))
    rows = [
        {"id": items[0].pk, "issue": issue.pk, "position": 1, "article": items[0].article_id, "DELETE": "on"},
        {"id": items[1].pk, "issue": issue.pk, "position": 2, "article": items[1].article_id},
    ]
    response = client.post(reverse("admin:newsletter_issue_change", args=[issue.pk]), change_data(issue, rows))
    assert response.status_code == 302
    assert ordered_headlines(issue) == [items[1].article.headline]


def test_change_page_has_preview_duplicate_and_the_reorder_script(client, editor):
    issue = issue_with_articles(2)
    page = client.get(reverse("admin:newsletter_issue_change", args=[issue.pk])).content.decode()
    assert reverse("admin:newsletter_issue_preview", args=[issue.pk]) in page
    assert f'action="{reverse("admin:newsletter_issue_duplicate", args=[issue.pk])}"' in page
    assert "newsletter/admin/issue_reorder.js" in page
    assert "mh-reorderable" in page


def test_preview_shows_desktop_and_mobile_frames_and_the_text_part(client, editor):
    issue = issue_with_articles(2)
    response = client.get(reverse("admin:newsletter_issue_preview", args=[issue.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    html_url = reverse("admin:newsletter_issue_preview_html", args=[issue.pk])
    assert page.count(f'src="{html_url}"') == 2
    assert "Desktop (600 px)" in page and "Mobile (375 px)" in page
    assert "Hi Edith," in page  # the text part, filled with the editor's own values
    for headline in ordered_headlines(issue):
        assert headline in page

    frame = client.get(html_url)
    assert frame.status_code == 200
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    # Byte for byte what the sending path produces for these personal values.
    assert frame.content.decode() == issue_preview(issue, preview_values(editor)).html
    assert "Hi Edith," in frame.content.decode()
    for marker in placeholders.MARKERS:
        assert marker not in frame.content.decode()


def test_preview_of_a_sent_issue_is_its_frozen_render(client, editor):
    from newsletter.services.rendering import issue_freeze

    issue = issue_with_articles(1)
    issue_freeze(issue)
    issue.save()
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENT)
    article = issue.articles.get()
    original = article.headline
    article.headline = "Edited after sending"
    article.save()
    frame = client.get(reverse("admin:newsletter_issue_preview_html", args=[issue.pk])).content.decode()
    assert original in frame and "Edited after sending" not in frame


def test_preview_shows_render_errors_with_message_and_line(client, editor, broken_layout):  # noqa: F811
    footer = broken_layout / "_footer.mjml"
    footer.write_text(footer.read_text().replace("</mj-text>", "", 1))
    issue = issue_with_articles(1, newsletter__template="broken")
    response = client.get(reverse("admin:newsletter_issue_preview", args=[issue.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "cannot be rendered" in page
    assert "MJML error" in page and "&lt;mj-text&gt;" in page
    error = response.context["error"]
    assert error.line and f"line {error.line}" in page
    frame = client.get(reverse("admin:newsletter_issue_preview_html", args=[issue.pk]))
    assert "MJML error" in frame.content.decode()


def test_preview_needs_view_permission(client):
    issue = issue_with_articles(1)
    client.force_login(user_with_perms("nobody"))
    assert client.get(reverse("admin:newsletter_issue_preview", args=[issue.pk])).status_code == 403
    assert client.get(reverse("admin:newsletter_issue_preview_html", args=[issue.pk])).status_code == 403


def test_duplicate_is_post_only_permission_checked_and_copies_the_draft(client, editor):
    issue = issue_with_articles(3)
    issue.items.filter(position=1).update(blurb="Editor's pick")
    url = reverse("admin:newsletter_issue_duplicate", args=[issue.pk])
    assert client.get(url).status_code == 405

    response = client.post(url)
    copy = Issue.objects.exclude(pk=issue.pk).get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{copy.pk}/change/")
    assert copy.status == Issue.Status.DRAFT and copy.subject == f"Copy of {issue.subject}"
    assert ordered_headlines(copy) == ordered_headlines(issue)
    assert copy.items.get(position=1).blurb == "Editor's pick"
    assert copy.public_id != issue.public_id and copy.created_by == editor


def test_duplicate_without_add_permission_is_forbidden(client):
    issue = issue_with_articles(1)
    client.force_login(user_with_perms("viewer", "view_issue"))
    assert client.post(reverse("admin:newsletter_issue_duplicate", args=[issue.pk])).status_code == 403
    assert Issue.objects.count() == 1


@pytest.mark.parametrize("status", [Issue.Status.SCHEDULED, Issue.Status.SENT])
def test_issue_is_read_only_once_it_leaves_draft(client, editor, status):
    issue = issue_with_articles(2)
    if status == Issue.Status.SENT:
        from newsletter.services.rendering import issue_freeze

        issue_freeze(issue)
        issue.save()
    Issue.objects.filter(pk=issue.pk).update(status=status, scheduled_at=timezone.now() + timedelta(hours=1))
    issue.refresh_from_db()
    url = reverse("admin:newsletter_issue_change", args=[issue.pk])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body and 'name="subject"' not in body
    assert 'name="items-0-position"' not in body  # inline rows are read-only too
    items = list(issue.items.order_by("position"))
    rows = [{"id": i.pk, "issue": issue.pk, "position": 9 - n, "article": i.article_id} for n, i in enumerate(items)]
    data = change_data(issue, rows) | {"subject": "Changed after it left draft"}
    assert client.post(url, data).status_code == 403
    issue.refresh_from_db()
    assert issue.subject != "Changed after it left draft"
    assert client.post(reverse("admin:newsletter_issue_delete", args=[issue.pk]), {"post": "yes"}).status_code == 403
    # still previewable and duplicable
    assert client.get(reverse("admin:newsletter_issue_preview", args=[issue.pk])).status_code == 200
    assert client.post(reverse("admin:newsletter_issue_duplicate", args=[issue.pk])).status_code == 302


def test_editor_without_change_permission_cannot_edit_a_draft(client):
    issue = issue_with_articles(1)
    client.force_login(user_with_perms("viewer", "view_issue"))
    url = reverse("admin:newsletter_issue_change", args=[issue.pk])
    assert client.post(url, change_data(issue, []) | {"subject": "x"}).status_code == 403


# --- Article admin ---------------------------------------------------------------------------------------------


def test_article_admin_search_and_used_filter(client, editor):
    issue = issue_with_articles(1)
    used = issue.articles.get()
    unused = ArticleFactory(headline="A story nobody picked")
    url = reverse("admin:newsletter_article_changelist")
    page = client.get(url, {"q": "nobody"}).content.decode()
    assert unused.headline in page and used.headline not in page
    page = client.get(url, {"used": "no"}).content.decode()
    assert unused.headline in page and used.headline not in page
    page = client.get(url, {"used": "yes"}).content.decode()
    assert used.headline in page and unused.headline not in page
    page = client.get(url, {"section": "City Hall"}).content.decode()
    assert used.headline in page


def test_article_saved_in_admin_is_sanitised_and_markdown_replaces_body(client, editor):
    url = reverse("admin:newsletter_article_add")
    data = {
        "headline": "Safe story",
        "slug": "safe-story",
        "published_at_0": "2026-01-05",
        "published_at_1": "08:00:00",
        "key_facts": "* First fact\n\n- Second fact\n",
        "body_html": "<p>ignored</p>",
        "body_markdown": "Intro with [a link](https://example.org).\n\n<script>alert(1)</script>",
        "commentary_html": '<p onclick="x()">Opinion</p><script>bad()</script>',
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].errors
    article = Article.objects.get(slug="safe-story")
    assert article.key_facts == ["First fact", "Second fact"]
    assert 'href="https://example.org"' in article.body_html and "ignored" not in article.body_html
    assert "script" not in article.body_html
    assert article.commentary_html == "<p>Opinion</p>"


def test_article_preview_renders_it_alone_in_the_layout(client, editor):
    NewsletterFactory()
    article = ArticleFactory()
    page = client.get(reverse("admin:newsletter_article_preview", args=[article.pk]))
    assert page.status_code == 200
    assert article.headline in page.content.decode() and "KEY FACTS" in page.content.decode()
    frame = client.get(reverse("admin:newsletter_article_preview_html", args=[article.pk]))
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert article.headline in frame.content.decode()


def test_the_admin_views_need_a_login(client):
    issue = IssueFactory()
    response = client.get(reverse("admin:newsletter_issue_preview", args=[issue.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert IssueArticle.objects.count() == 0
