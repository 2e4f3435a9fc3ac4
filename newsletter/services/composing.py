"""The editor's workflows: keep article HTML clean, order an issue's articles, duplicate an issue, preview it."""

from dataclasses import dataclass, replace

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from newsletter import placeholders
from newsletter.models import Article, Issue, IssueArticle
from newsletter.placeholders import PersonalValues
from newsletter.services.checklist import CheckItem, Checklist, checklist_for_html
from newsletter.services.rendering import RenderedIssue, RenderError, issue_render, issue_rendered
from newsletter.services.sanitizing import html_sanitize, markdown_to_html


def article_sanitize(article: Article, *, body_markdown: str | None = None) -> Article:
    """Make the article's HTML safe to store and send (nh3). An article written in Markdown keeps its source in
    `body_markdown` (given here, or already on the article) and its body HTML is generated from it each time.
    Does not save: the admin form, the importer and scripts call this before saving, so every door stores clean
    HTML."""
    if body_markdown is not None:
        article.body_markdown = body_markdown.strip()
    if article.body_markdown.strip():
        article.body_html = markdown_to_html(article.body_markdown)
    else:
        article.body_html = html_sanitize(article.body_html)
    article.commentary_html = html_sanitize(article.commentary_html)
    article.key_facts = [str(fact).strip() for fact in (article.key_facts or []) if str(fact).strip()]
    return article


def issue_renumber(issue: Issue) -> None:
    """Positions 1..n in the current order (ties keep their insertion order), so gaps and duplicates left by
    editing or drag-and-drop never make the order ambiguous. Safe to run twice."""
    items = list(issue.items.order_by("position", "id"))
    changed = []
    for number, item in enumerate(items, start=1):
        if item.position != number:
            item.position = number
            changed.append(item)
    IssueArticle.objects.bulk_update(changed, ["position"])


@transaction.atomic
def issue_duplicate(issue: Issue, user=None) -> Issue:
    """A new draft with the same newsletter, texts, articles, order and blurbs; nothing of the send is copied."""
    copy = Issue.objects.create(
        newsletter=issue.newsletter,
        subject=f"Copy of {issue.subject}"[: Issue._meta.get_field("subject").max_length],
        preheader=issue.preheader,
        intro=issue.intro,
        sponsor_name=issue.sponsor_name,
        sponsor_url=issue.sponsor_url,
        sponsor_text=issue.sponsor_text,
        sponsor_image=issue.sponsor_image,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    IssueArticle.objects.bulk_create(
        IssueArticle(
            issue=copy, article_id=item.article_id, position=item.position, blurb=item.blurb, section=item.section
        )
        for item in issue.items.order_by("position", "id")
    )
    return copy


def preview_values(user) -> PersonalValues:
    """The personal values an editor's preview is filled with: their own name, and links that go nowhere (a
    preview must never carry a working unsubscribe link for someone)."""
    name = (getattr(user, "get_short_name", lambda: "")() or getattr(user, "get_username", lambda: "")()).strip()
    return PersonalValues(
        unsubscribe_url=f"{settings.SITE_URL}/#preview-unsubscribe",
        preferences_url=f"{settings.SITE_URL}/#preview-preferences",
        name=name,
    )


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str


def issue_preview(issue: Issue, values: PersonalValues) -> Preview:
    """Exactly what a subscriber with `values` receives: the same render (frozen once sending started) and the
    same substitution the sender uses. Raises RenderError."""
    rendered: RenderedIssue = issue_rendered(issue)
    values = replace(values, fallback_name=placeholders.name_fallback(issue.newsletter.language))
    return Preview(
        subject=rendered.subject,
        html=placeholders.substitute(rendered.html, values.for_html()),
        text=placeholders.substitute(rendered.text, values.for_text()),
    )


class ComposeError(ValueError):
    """A compose action that cannot be done; the message says why."""


def articles_search(query: str, *, issue: Issue | None = None, limit: int = 20) -> list[Article]:
    """Articles whose headline, summary, byline, section or tags contain every word of `query`, newest first;
    those already in `issue` are left out."""
    articles = Article.objects.all()
    for word in query.split()[:8]:
        articles = articles.filter(
            Q(headline__icontains=word)
            | Q(dek__icontains=word)
            | Q(byline__icontains=word)
            | Q(section__icontains=word)
            | Q(tags__icontains=word)
        )
    if issue is not None:
        articles = articles.exclude(issue_items__issue=issue)
    return list(articles.order_by("-published_at", "-id")[:limit])


@transaction.atomic
def issue_article_add(issue: Issue, article: Article, *, section: str | None = None) -> IssueArticle:
    """Append `article` to a draft issue, under `section` (the article's own section when None). Raises
    ComposeError when the issue is not a draft or already has the article."""
    locked = Issue.objects.select_for_update().get(pk=issue.pk)
    if not locked.is_editable:
        raise ComposeError(f"This issue is {locked.get_status_display().lower()}; only a draft can change.")
    if locked.items.filter(article=article).exists():
        raise ComposeError(f"“{article.headline}” is already in this issue.")
    last = locked.items.aggregate(last=Max("position"))["last"]
    heading = (article.section if section is None else section).strip()[:100]
    item = IssueArticle.objects.create(issue=locked, article=article, position=(last or 0) + 1, section=heading)
    issue_renumber(locked)
    item.refresh_from_db()
    return item


def issue_checklist(issue: Issue) -> Checklist:
    """The pre-send checklist for the issue as it stands (served from the render cache like the preview)."""
    try:
        rendered = issue_render(issue)
    except RenderError as exc:
        return Checklist(items=[CheckItem("render", "The issue renders", ok=False, blocking=True, details=[str(exc)])])
    return checklist_for_html(issue, rendered.html)
