"""Render an issue once: Django templates fill the MJML layout, MJML compiles it, a text template gives the plain
part. Personal values stay as markers (see placeholders.py) so the render can be frozen and reused per recipient."""

from dataclasses import dataclass

from django.conf import settings
from django.template import TemplateSyntaxError
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from newsletter import placeholders
from newsletter.mjml import MjmlError, compile_mjml
from newsletter.models import Issue


class RenderError(Exception):
    """The issue's template or MJML is broken: shown to the editor, and sending is blocked."""


@dataclass(frozen=True)
class RenderedIssue:
    subject: str
    html: str
    text: str


def issue_context(issue: Issue) -> dict:
    items = list(issue.items.select_related("article").order_by("position", "id"))
    return {
        "issue": issue,
        "newsletter": issue.newsletter,
        "items": items,
        "site_url": settings.SITE_URL,
        "view_url": settings.SITE_URL + reverse("newsletter:issue", args=[issue.newsletter.slug, issue.public_id]),
        "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
        "preferences_url": placeholders.PREFERENCES_URL,
        "name": placeholders.NAME,
    }


def issue_render(issue: Issue) -> RenderedIssue:
    """Render the issue as it stands now. Raises RenderError with the template's or MJML's message."""
    context = issue_context(issue)
    layout = issue.newsletter.template or "default"
    try:
        mjml_source = render_to_string(f"email/{layout}/issue.mjml", context)
        text = render_to_string(f"email/{layout}/issue.txt", context)
    except TemplateSyntaxError as exc:
        raise RenderError(f"Template error: {exc}") from exc
    try:
        html = compile_mjml(mjml_source)
    except MjmlError as exc:
        raise RenderError(f"MJML error: {exc}") from exc
    return RenderedIssue(subject=issue.subject, html=html, text=text)


def issue_freeze(issue: Issue) -> None:
    """Store the render the issue will be sent with. Caller holds the issue's row lock and saves it."""
    rendered = issue_render(issue)
    issue.frozen_subject, issue.frozen_html, issue.frozen_text = rendered.subject, rendered.html, rendered.text
    issue.frozen_at = timezone.now()


def issue_rendered(issue: Issue) -> RenderedIssue:
    """The frozen render once sending has started, else a fresh one (drafts, previews)."""
    if issue.frozen_at:
        return RenderedIssue(subject=issue.frozen_subject, html=issue.frozen_html, text=issue.frozen_text)
    return issue_render(issue)
