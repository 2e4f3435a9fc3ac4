"""HTML fragments (sanitised article bodies) to plain text that reads well on its own in the text/plain part.

html2text keeps structure (paragraphs, bullet lists, quotes, headings) rather than stripping tags. Links become
"text (https://…)" inline, which is how people write links in plain-text mail, instead of Markdown references.
"""

import re

import html2text

_ANCHOR = re.compile(r'<a\b[^>]*?\bhref="([^"]*)"[^>]*>(.*?)</a>', re.IGNORECASE | re.DOTALL)
# html2text protects Markdown syntax with backslashes (`1984\.`); plain text readers should not see them.
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>])")


def _inline_url(match: re.Match) -> str:
    url, label = match.group(1), match.group(2)
    plain_label = re.sub(r"<[^>]+>", "", label).strip()
    if not url or plain_label == url:
        return label or url
    return f"{label} ({url})"


def html_to_text(html: str, width: int = 72) -> str:
    """Plain text of a sanitised HTML fragment: paragraphs, `*` bullets, `> ` quotes, links as URLs."""
    if not html:
        return ""
    converter = html2text.HTML2Text()
    converter.body_width = width
    converter.ignore_emphasis = True
    converter.ignore_links = True  # anchors are already "label (url)"
    converter.images_to_alt = True
    converter.ul_item_mark = "*"
    converter.unicode_snob = True
    text = converter.handle(_ANCHOR.sub(_inline_url, html))
    return _MD_ESCAPE.sub(r"\1", text).strip()
