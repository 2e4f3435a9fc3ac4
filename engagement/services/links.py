"""Tracked links: numbered when the send starts, put into the message when its skeleton is built.

The frozen render itself keeps the original URLs (the archive and the web version show them, and measure
nothing); the worker building the message skeleton swaps every trackable URL for its short redirect with the
reader marker, once per issue per process. Never rewritten: our own pages (unsubscribe, preferences, archive,
web version: anything under SITE_URL, and every personal marker), mailto: and other non-web links.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape, unescape

from django.conf import settings
from django.db import transaction

from engagement import tokens
from engagement.models import Link
from newsletter import placeholders
from newsletter.models import Issue, TrackingMode

_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)("[^>]*>)(.*?)</a>', re.IGNORECASE | re.DOTALL)
_TEXT_URL = re.compile(r"https?://[^\s<>()\"\[\]]+")
_TAG = re.compile(r"<[^>]+>")
_BODY_END = re.compile(r"</body>", re.IGNORECASE)


def trackable(url: str) -> bool:
    """Whether a link of an issue may become a redirect: a web address that is not one of our own pages."""
    if "%%MH_" in url or not url.lower().startswith(("http://", "https://")):
        return False
    site = settings.SITE_URL.rstrip("/").lower()
    lowered = url.lower()
    return not (lowered == site or lowered.startswith(site + "/"))


def _article_for(url: str, articles: list) -> object | None:
    for article in articles:
        if article.canonical_url and article.canonical_url == url:
            return article
    for article in articles:
        fields = (article.body_html, article.dek, article.commentary_html, article.bottom_line)
        if any(url in f or escape(url, quote=True) in f for f in fields if f):
            return article
    return None


@transaction.atomic
def issue_links_freeze(issue: Issue) -> dict[str, object]:
    """Number the trackable links of the issue's frozen HTML (caller has frozen it and holds its row lock), and
    return the tracking fields to freeze on the issue with it: the newsletter's mode and pixel flag now. With
    tracking off, no link is numbered and nothing will be rewritten."""
    newsletter = issue.newsletter
    mode = newsletter.tracking_mode
    Link.objects.filter(issue=issue).delete()  # a failed start frozen again: its links were never mailed
    if mode == TrackingMode.OFF:
        return {"tracking_mode": TrackingMode.OFF, "tracking_pixel": False}
    articles = [item.article for item in issue.items.select_related("article")]
    seen: dict[str, Link] = {}
    for match in _HREF.finditer(issue.frozen_html):
        url = unescape(match.group(2)).strip()
        if url in seen or not trackable(url):
            continue
        label = unescape(_TAG.sub("", match.group(4))).strip()[:200]
        seen[url] = Link(issue=issue, number=len(seen) + 1, url=url, article=_article_for(url, articles), label=label)
    for url in _TEXT_URL.findall(issue.frozen_text):
        if url not in seen and trackable(url):
            seen[url] = Link(issue=issue, number=len(seen) + 1, url=url, article=_article_for(url, articles))
    Link.objects.bulk_create(seen.values())
    return {"tracking_mode": mode, "tracking_pixel": newsletter.tracking_pixel}


def message_rewrite(issue: Issue, html: str, text: str) -> tuple[str, str]:
    """The issue's HTML and text with every numbered link replaced by its redirect (the reader marker at its
    end) and, when the issue counts opens, the pixel before </body>. Unchanged for an issue without tracking
    (drafts, test sends of drafts, tracking off)."""
    if issue.tracking_mode not in (TrackingMode.AGGREGATE, TrackingMode.PER_READER):
        return html, text
    by_url = {url: number for number, url in Link.objects.filter(issue=issue).values_list("number", "url")}
    prefix = {number: f"{settings.SITE_URL}/r/{tokens.link_part(issue.pk, number)}." for number in by_url.values()}

    def html_link(match: re.Match) -> str:
        number = by_url.get(unescape(match.group(2)).strip())
        if number is None:
            return match.group(0)
        return f"{match.group(1)}{prefix[number]}{placeholders.TRACK}{match.group(3)}{match.group(4)}</a>"

    def text_link(match: re.Match) -> str:
        number = by_url.get(match.group(0))
        return match.group(0) if number is None else prefix[number] + placeholders.TRACK

    html = _HREF.sub(html_link, html)
    text = _TEXT_URL.sub(text_link, text)
    if issue.tracking_pixel:
        pixel = (
            f'<img src="{settings.SITE_URL}/o/{tokens.link_part(issue.pk, 0)}.{placeholders.TRACK}.gif" '
            'width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">'
        )
        html, found = _BODY_END.subn(pixel + "</body>", html, count=1)
        if not found:
            html += pixel
    return html, text


@lru_cache(maxsize=8192)
def link_target(issue_id: int, number: int) -> str | None:
    """Where a tracked link goes: the URL that was in that issue, or None. Links never change once mailed, so
    each web process keeps the answer (an unknown pair is remembered as None just the same)."""
    return Link.objects.filter(issue_id=issue_id, number=number).values_list("url", flat=True).first()


@lru_cache(maxsize=1024)
def issue_tracking(issue_id: int) -> tuple[str, bool]:
    """The tracking mode and pixel flag frozen on an issue ("", False for an unknown one). Frozen once mailed, so
    each web process keeps the answer."""
    row = Issue.objects.filter(pk=issue_id).values_list("tracking_mode", "tracking_pixel").first()
    return row or ("", False)
