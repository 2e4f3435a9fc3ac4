"""The pre-send checklist: what to fix before an issue goes to every reader, read from the render itself.

Blocking items (an image without alt text, a link that goes nowhere, no postal address) stop the send at every
door: the send page disables its buttons, and `issue_freeze` refuses to freeze (IssueNotReady, in rendering.py), so
`send_issue`, a scheduled start and the admin all behave the same. `issue_checklist` (composing.py) runs it on the
issue's current render. Gmail's clipping size is a warning: the issue still arrives, cut short.
"""

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import Resolver404, resolve

from newsletter import placeholders
from newsletter.models import Issue
from newsletter.services.images import image_for_email

# Gmail shows "[Message clipped]" and hides the rest (the unsubscribe link included) past 102 KB of HTML.
GMAIL_CLIP_BYTES = 102 * 1024
# Schemes a reader's mail client can follow from an email besides the web.
OTHER_SCHEMES = {"mailto"}
IMG_SRC = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]*)\"")


@dataclass(frozen=True)
class CheckItem:
    key: str
    label: str
    ok: bool
    blocking: bool
    details: list[str] = field(default_factory=list)
    problem: str = ""  # the failure in a few words, for the error that blocks a send

    @property
    def blocks(self) -> bool:
        return self.blocking and not self.ok


@dataclass(frozen=True)
class Checklist:
    items: list[CheckItem]
    html_bytes: int = 0

    @property
    def blocked(self) -> bool:
        return any(item.blocks for item in self.items)

    @property
    def blocking_items(self) -> list[CheckItem]:
        return [item for item in self.items if item.blocks]

    @property
    def blocking_message(self) -> str:
        reasons = "; ".join(item.problem or item.label for item in self.blocking_items)
        return f"The pre-send checklist found {reasons}. Fix these on the issue and send again."


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs) -> None:
        values = dict(attrs)
        if tag == "a" and "href" in values:
            self.links.append((values["href"] or "").strip())
        elif tag == "img":
            self.images.append(((values.get("src") or "").strip(), values.get("alt")))


def _site_page(url: str) -> bool:
    """Whether a URL on the site's own host is one of its pages (a typo'd archive link is caught here)."""
    base = urlsplit(settings.SITE_URL)
    parts = urlsplit(url)
    path = parts.path or "/"
    prefix = base.path.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/") and path != prefix:
            return False
        path = path[len(prefix) :] or "/"
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def link_problem(href: str) -> str:
    """Why a link in an email cannot work (not a web address), or "" when it can."""
    if href in placeholders.MARKERS:
        return ""
    if not href:
        return "an empty link"
    parts = urlsplit(href)
    scheme = parts.scheme.lower()
    if scheme in OTHER_SCHEMES:
        return ""
    if scheme not in ("http", "https") or not parts.netloc:
        return f"{href} is not a web address (links in an email need https://…)"
    return ""


def site_link_problem(href: str) -> str:
    """A web address on this site's own host that is none of its pages (a mistyped archive or signup link). Only a
    warning: a newsroom may serve its own pages on the same host through a proxy."""
    parts = urlsplit(href)
    if parts.scheme.lower() not in ("http", "https"):
        return ""
    if parts.netloc.lower() == urlsplit(settings.SITE_URL).netloc.lower() and not _site_page(href):
        return f"{href} is not a page of this site"
    return ""


def _image_owners(issue: Issue) -> dict[str, str]:
    """Which article each image URL of the issue belongs to, so the checklist can say where to fix it."""
    owners: dict[str, str] = {}
    if issue.newsletter.logo_id:
        owners[image_for_email(issue.newsletter.logo).src] = f"the logo of “{issue.newsletter.name}”"
    if issue.sponsor_image_id:
        owners[image_for_email(issue.sponsor_image).src] = "the sponsor block"
    for item in issue.items.select_related("article", "article__image"):
        article = item.article
        label = f"article “{article.headline}”"
        if article.image_id and (shown := image_for_email(article.image)):
            owners.setdefault(shown.src, label)
        if article.image_url:
            owners.setdefault(article.image_url, label)
        for src in IMG_SRC.findall(article.body_html + article.commentary_html):
            owners.setdefault(unescape(src), label)
    return owners


def checklist_for_html(issue: Issue, html: str) -> Checklist:
    collector = _Collector()
    collector.feed(html)
    size = len(html.encode())
    no_alt = [src or "(no src)" for src, alt in collector.images if not (alt or "").strip()]
    owners = _image_owners(issue) if no_alt else {}
    bad_links = list(dict.fromkeys(p for href in collector.links if (p := link_problem(href))))
    odd_links = list(dict.fromkeys(p for href in collector.links if (p := site_link_problem(href))))
    address = (issue.newsletter.postal_address or "").strip()
    items = [
        CheckItem(
            "size",
            f"Size: {size / 1024:.1f} KB of HTML (Gmail clips past {GMAIL_CLIP_BYTES // 1024} KB)",
            ok=size < GMAIL_CLIP_BYTES,
            blocking=False,
            details=[] if size < GMAIL_CLIP_BYTES else ["Gmail will hide the end of the email; remove an article."],
        ),
        CheckItem(
            "alt_text",
            "Every image has alt text",
            ok=not no_alt,
            blocking=True,
            details=[f"No alt text: {src}" + (f" ({owners[src]})" if src in owners else "") for src in no_alt],
            problem=f"{len(no_alt)} image(s) without alt text ({', '.join(no_alt[:3])})",
        ),
        CheckItem(
            "links",
            "Every link is a web address (https://…) or an email address",
            ok=not bad_links,
            blocking=True,
            details=bad_links,
            problem=f"broken links ({'; '.join(bad_links[:3])})",
        ),
        CheckItem(
            "site_links",
            "Links to this site go to one of its pages",
            ok=not odd_links,
            blocking=False,
            details=odd_links,
        ),
        CheckItem(
            "postal_address",
            "The newsletter has a postal address (CAN-SPAM)",
            ok=bool(address),
            blocking=True,
            details=[] if address else [f"Add it to the newsletter “{issue.newsletter.name}”."],
            problem=f"the newsletter “{issue.newsletter.name}” has no postal address",
        ),
    ]
    return Checklist(items=items, html_bytes=size)
