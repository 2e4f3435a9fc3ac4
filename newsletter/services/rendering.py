"""Render an issue once: Django templates fill the MJML layout, MJML compiles it, a text template gives the plain
part. Personal values stay as markers (see placeholders.py) so the render can be frozen and reused per recipient.

The compiled render is cached under a fingerprint of everything it is made from (issue, newsletter, items,
articles, the layout files), so opening the preview twice compiles once and any edit shows up at once.
"""

import hashlib
import json
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.cache import cache as django_cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template import Context, Engine, TemplateDoesNotExist, TemplateSyntaxError
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe

from newsletter import placeholders
from newsletter.mjml import MjmlError, compile_mjml
from newsletter.models import Article, Issue, IssueArticle, Newsletter
from newsletter.services.blocks import brand_for, sections_group, sponsor_for
from newsletter.services.checklist import checklist_for_html
from newsletter.services.images import image_for_email
from newsletter.services.sanitizing import html_sanitize
from newsletter.services.text import html_to_text

# Bump when the rendering code changes what it produces, so cached renders from older code are not reused.
RENDER_VERSION = 5
CACHE_SECONDS = 24 * 3600


class RenderError(Exception):
    """The issue's template or MJML is broken: shown to the editor, and sending is blocked.

    `message` is what went wrong; `line` and `source` say where (a template file, or "MJML" for the generated MJML
    document) when known; `excerpt` is that line's text."""

    def __init__(self, message: str, *, line: int | None = None, source: str = "", excerpt: str = ""):
        self.message, self.line, self.source, self.excerpt = message, line, source, excerpt
        where = f" ({source}, line {line})" if line else (f" ({source})" if source else "")
        super().__init__(f"{message}{where}")


class IssueNotReady(RenderError):
    """The issue renders, but the pre-send checklist has blocking items; the message lists them."""


@dataclass(frozen=True)
class RenderedIssue:
    subject: str
    html: str
    text: str


@dataclass
class ArticleBlock:
    """One article as the templates see it: sanitised HTML for the email, and its plain-text twin."""

    headline: str
    dek: str
    byline: str
    section: str
    url: str
    image_url: str
    image_alt: str
    published_at: datetime
    key_facts: list[str]
    bottom_line: str
    blurb: str
    body_html: SafeString
    commentary_html: SafeString
    body_text: str = field(default="")
    commentary_text: str = field(default="")
    # The 1,200 px rendition of an uploaded image (high-density screens); empty for an image given by URL.
    image_url_2x: str = field(default="")
    # The issue's section heading this article sits under (IssueArticle.section).
    heading: str = field(default="")

    @property
    def key_facts_text(self) -> str:
        """The key facts as a plain-text bullet list, wrapped lines indented under their bullet."""
        return "\n".join(
            textwrap.fill(fact, 72, initial_indent="  * ", subsequent_indent="    ") for fact in self.key_facts
        )

    @classmethod
    def build(cls, article: Article, blurb: str = "", heading: str = "") -> "ArticleBlock":
        body, commentary = html_sanitize(article.body_html), html_sanitize(article.commentary_html)
        facts = article.key_facts if isinstance(article.key_facts, list) else []
        uploaded = image_for_email(article.image, alt=article.image_alt) if article.image_id else None
        return cls(
            headline=article.headline,
            dek=article.dek,
            byline=article.byline,
            section=article.section,
            url=article.canonical_url,
            image_url=uploaded.src if uploaded else article.image_url,
            image_url_2x=uploaded.src_2x if uploaded else "",
            # An image without alt text is announced as its file name; an empty alt marks it decorative instead.
            image_alt=uploaded.alt if uploaded else article.image_alt,
            heading=heading,
            published_at=article.published_at,
            key_facts=[str(f) for f in facts if str(f).strip()],
            bottom_line=article.bottom_line,
            blurb=blurb,
            body_html=mark_safe(body),  # noqa: S308 - sanitised by nh3 just above
            commentary_html=mark_safe(commentary),  # noqa: S308
            body_text=html_to_text(body),
            commentary_text=html_to_text(commentary),
        )


@cache
def email_engine() -> Engine:
    """The template engine for emails: the project's template folders, autoescaping, and debug on so that a
    template error carries its file and line whatever settings.DEBUG says."""
    return Engine(
        dirs=[str(d) for d in settings.TEMPLATES[0]["DIRS"]],
        app_dirs=True,
        debug=True,
        autoescape=True,
        libraries={"i18n": "django.templatetags.i18n", "l10n": "django.templatetags.l10n"},
    )


@receiver(setting_changed)
def _reset_engine(*, setting: str, **kwargs) -> None:
    if setting in ("TEMPLATES", "BASE_DIR"):
        email_engine.cache_clear()
        _layout_files.cache_clear()


def issue_view_url(issue: Issue) -> str:
    return settings.SITE_URL + reverse("newsletter:issue", args=[issue.newsletter.slug, issue.public_id])


def _context(
    issue: Issue, newsletter: Newsletter, blocks: list[ArticleBlock], view_url: str, markers: dict | None = None
) -> dict:
    markers = markers or {m: m for m in placeholders.MARKERS}
    return {
        "issue": issue,
        "newsletter": newsletter,
        "articles": blocks,
        "sections": sections_group(blocks),
        "brand": brand_for(newsletter),
        "sponsor": sponsor_for(issue),
        "site_url": settings.SITE_URL,
        "site_host": settings.SITE_URL.split("://", 1)[-1].split("/", 1)[0],
        "lang": newsletter.language or settings.LANGUAGE_CODE,
        "view_url": view_url,
        "unsubscribe_url": markers[placeholders.UNSUBSCRIBE_URL],
        "preferences_url": markers[placeholders.PREFERENCES_URL],
        "name": markers[placeholders.NAME],
        "sent_on": issue.scheduled_at or issue.started_at or timezone.now(),
    }


def _items(issue: Issue) -> list[IssueArticle]:
    return list(issue.items.select_related("article", "article__image").order_by("position", "id"))


def _blocks(items: list[IssueArticle]) -> list[ArticleBlock]:
    return [ArticleBlock.build(item.article, item.blurb, item.section) for item in items]


def issue_context(issue: Issue) -> dict:
    blocks = _blocks(_items(issue))
    return _context(issue, issue.newsletter, blocks, issue_view_url(issue))


def _render_template(name: str, context: dict) -> str:
    try:
        template = email_engine().get_template(name)
        return template.render(Context(context, autoescape=not name.endswith(".txt")))
    except TemplateDoesNotExist as exc:
        raise RenderError(f"Template not found: {exc}", source=name) from exc
    except Exception as exc:  # a syntax error, or a filter or tag failing at render time: the template's fault
        info = getattr(exc, "template_debug", None) or {}
        kind = "" if isinstance(exc, TemplateSyntaxError) else f"{exc.__class__.__name__}: "
        raise RenderError(
            f"Template error: {kind}{exc}",
            line=info.get("line"),
            source=_template_path(info.get("name"), name),
            excerpt=_debug_excerpt(info),
        ) from exc


def _template_path(path: str | None, fallback: str) -> str:
    """The failing template's path relative to the project, which is how a template author knows it."""
    if not path:
        return fallback
    base = str(settings.BASE_DIR) + "/"
    return path[len(base) :] if path.startswith(base) else path


def _debug_excerpt(info: dict) -> str:
    for number, text in info.get("source_lines", []):
        if number == info.get("line"):
            return text.strip()
    return ""


def issue_mjml(issue: Issue) -> str:
    """The issue's MJML document as the templates fill it, before compiling. The test suite hands it to the
    official `mjml` to validate it and compare that compiler's output with mrml's."""
    with translation.override(issue.newsletter.language or settings.LANGUAGE_CODE):
        return _render_template(f"email/{issue.newsletter.template or 'default'}/issue.mjml", issue_context(issue))


def render_blocks(issue: Issue, newsletter: Newsletter, blocks: list[ArticleBlock], view_url: str) -> RenderedIssue:
    """Fill and compile the newsletter's layout for these article blocks (no cache). Personal markers come only
    from the layout: any marker-shaped text in the content is broken (placeholders.seal)."""
    markers = placeholders.render_markers()
    context = _context(issue, newsletter, blocks, view_url, markers)
    layout = newsletter.template or "default"
    # The layout's fixed words (greeting, headings, footer, dates) in the newsletter's language, whatever the
    # language of the editor's request or the worker.
    with translation.override(newsletter.language or settings.LANGUAGE_CODE):
        mjml_source = _render_template(f"email/{layout}/issue.mjml", context)
        text = _render_template(f"email/{layout}/issue.txt", context)
    try:
        compiled = compile_mjml(mjml_source)
    except MjmlError as exc:
        lines = mjml_source.splitlines()
        excerpt = lines[exc.line - 1].strip() if exc.line and exc.line <= len(lines) else ""
        raise RenderError(f"MJML error: {exc.message}", line=exc.line, source="MJML", excerpt=excerpt) from exc
    return RenderedIssue(
        subject=issue.subject,
        html=placeholders.seal(compiled, markers, html=True),
        text=placeholders.seal(_tidy_text(text), markers, html=False),
    )


def _tidy_text(text: str) -> str:
    """Collapse the blank-line runs that template tags leave behind; keep at most one empty line."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"


@cache
def _layout_files(layout: str) -> list[Path]:
    folders = [Path(d) / "email" / layout for d in settings.TEMPLATES[0]["DIRS"]]
    return sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_file())


def render_fingerprint(issue: Issue, items: list[IssueArticle]) -> str:
    """A hash of every input of the render: any edit to the issue, its items, their articles, the newsletter or the
    layout's files gives a new key."""
    newsletter = issue.newsletter
    layout = newsletter.template or "default"
    parts = {
        "v": RENDER_VERSION,
        "issue": [issue.pk, issue.updated_at.isoformat() if issue.updated_at else "", issue.subject,
                  issue.preheader, issue.intro, str(issue.public_id), str(issue.scheduled_at), str(issue.started_at)],
        "newsletter": [newsletter.pk, newsletter.name, newsletter.slug, newsletter.postal_address, layout,
                       newsletter.description, newsletter.language, newsletter.accent_colour,
                       newsletter.header_text, newsletter.footer_text, _image_key(newsletter.logo)],
        "sponsor": [issue.sponsor_name, issue.sponsor_url, issue.sponsor_text, _image_key(issue.sponsor_image)],
        "items": [[i.pk, i.position, i.blurb, i.section, i.article_id, i.article.updated_at.isoformat(),
                   _image_key(i.article.image)] for i in items],
        "layout": [[str(p), p.stat().st_mtime_ns] for p in _layout_files(layout)],
        "site": [settings.SITE_URL, settings.LANGUAGE_CODE],
    }  # fmt: skip
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _image_key(image) -> list:
    """An image's identity and last edit (its alt text is part of the render)."""
    return [image.pk, image.updated_at.isoformat()] if image is not None else []


def issue_render(issue: Issue, *, use_cache: bool = True) -> RenderedIssue:
    """Render the issue as it stands now. Raises RenderError with the template's or MJML's message and line.

    Served from the cache when nothing it depends on has changed (a render error is not cached)."""
    items = _items(issue)
    key = f"masthead:render:{render_fingerprint(issue, items)}" if use_cache else ""
    if key and (hit := django_cache.get(key)) is not None:
        return RenderedIssue(*hit)
    blocks = _blocks(items)
    rendered = render_blocks(issue, issue.newsletter, blocks, issue_view_url(issue))
    if key:
        django_cache.set(key, (rendered.subject, rendered.html, rendered.text), CACHE_SECONDS)
    return rendered


def issue_freeze(issue: Issue) -> None:
    """Store the render the issue will be sent with. Caller holds the issue's row lock and saves it.

    Renders afresh rather than from the cache: this is the copy every subscriber and the archive will get, so it
    must not depend on the cache being right. Rendering is deterministic, so it equals what the preview showed."""
    rendered = issue_render(issue, use_cache=False)
    if (checklist := checklist_for_html(issue, rendered.html)).blocked:
        raise IssueNotReady(checklist.blocking_message)  # a RenderError: nothing is frozen, the send does not start
    issue.frozen_subject, issue.frozen_html, issue.frozen_text = rendered.subject, rendered.html, rendered.text
    issue.frozen_at = timezone.now()


def issue_rendered(issue: Issue) -> RenderedIssue:
    """The frozen render once sending has started, else a fresh one (drafts, previews)."""
    if issue.frozen_at:
        return RenderedIssue(subject=issue.frozen_subject, html=issue.frozen_html, text=issue.frozen_text)
    return issue_render(issue)


def article_render(article: Article, newsletter: Newsletter) -> RenderedIssue:
    """One article in the newsletter's layout, for the article admin's preview. Not cached, never sent."""
    issue = Issue(newsletter=newsletter, subject=article.headline, preheader=article.dek)
    return render_blocks(issue, newsletter, [ArticleBlock.build(article)], view_url=newsletter_url(newsletter))


def newsletter_url(newsletter: Newsletter) -> str:
    return settings.SITE_URL + reverse("newsletter:archive", args=[newsletter.slug])
