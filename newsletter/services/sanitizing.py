"""Article HTML is sanitised with nh3 (the Rust ammonia sanitiser) before it is stored, and again when it is
rendered, so nothing typed into the admin or pulled from a feed can run script in a reader's mail client or on the
archive pages.

The allow-list is narrow on purpose: email clients render little beyond text structure, links and images, and
anything else (iframes, forms, styles, event handlers) is either stripped by clients or dangerous.
"""

import re

import markdown as markdown_lib
import nh3

from newsletter.services.pasted import pasted_clean

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "cite", "code", "em", "figcaption", "figure", "h2", "h3", "h4", "hr",
    "i", "img", "li", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "abbr": {"title"},
    "q": {"cite"},
    "blockquote": {"cite"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Paragraphs with nothing in them (Word's spacing, an editor's stray Enter) only add height in an email.
EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|\xa0|<br>)*</p>")
TRAILING_BREAKS = re.compile(r"(?:\s*<br>)+\s*$")


def html_sanitize(html: str) -> str:
    """Return `html` with only the allowed tags and attributes; scripts and styles lose their content too. Markup
    pasted from Word or Google Docs is first turned into plain semantic HTML (pasted.py). Safe to run twice: the
    output of one run is the output of the next."""
    if not html:
        return ""
    cleaned = nh3.clean(
        pasted_clean(html),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return TRAILING_BREAKS.sub("", EMPTY_PARAGRAPH.sub("", cleaned)).strip()


def markdown_to_html(text: str) -> str:
    """Markdown (as editors and feeds write it) to sanitised HTML. Raw HTML inside the Markdown is sanitised too."""
    html = markdown_lib.markdown(text or "", extensions=["extra", "sane_lists"])
    # The email's own outline uses h1 (masthead), h2 (headlines) and h3 (article parts): a story's headings sit below.
    html = re.sub(r"<(/?)h[1-3]>", r"<\1h4>", html)
    return html_sanitize(html)
