"""Clean HTML pasted from Word and Google Docs into what it means, before the sanitiser sees it.

Office HTML says most things with inline styles the sanitiser would simply drop: Google Docs marks bold as
`<span style="font-weight:700">` inside a `<b style="font-weight:normal">` wrapper around the whole paste, and Word
writes lists as paragraphs with `mso-list` styles and a typed bullet. Dropping the styles alone would lose the bold,
keep the typed bullets and make everything bold. This pass turns them into `<strong>`, `<em>`, `<sup>`, `<sub>`,
real `<ul>`/`<ol>` lists, and drops Word's XML islands, bullet markers and empty paragraphs. Everything else is
left for nh3 (sanitizing.py), which still decides what is allowed.
"""

import re
from html import escape
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Word's XML islands and document head: their text ("false false EN-GB …") is never content.
DROP_WITH_CONTENT = {"head", "xml", "style", "script", "title", "template"}
BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "blockquote", "pre", "figure", "hr"}
HEADING_LEVELS = {"h1": "h2", "h5": "h4", "h6": "h4"}  # the email's outline: story headings are h2–h4
ORDERED_MARKER = re.compile(r"^\s*(\d+|[a-zA-Z]|[ivxlcdmIVXLCDM]+)[.)]")
LOOKS_PASTED = re.compile(r"mso-|docs-internal-guid|urn:schemas-microsoft-com|font-weight|font-style|vertical-align")


def _style(attrs: dict[str, str]) -> dict[str, str]:
    out = {}
    for part in (attrs.get("style") or "").split(";"):
        if ":" in part:
            key, value = part.split(":", 1)
            out[key.strip().lower()] = value.strip().lower()
    return out


def _marks(style: dict[str, str]) -> list[str]:
    """The semantic tags an inline style stands for."""
    marks = []
    weight = style.get("font-weight", "")
    if weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600):
        marks.append("strong")
    if style.get("font-style") == "italic":
        marks.append("em")
    if style.get("vertical-align") in ("super", "sub"):
        marks.append("sup" if style["vertical-align"] == "super" else "sub")
    return marks


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.closers: list[tuple[str, str]] = []  # (tag, what its end tag becomes)
        self.skip = 0  # depth inside dropped content
        self.marker: list[str] | None = None  # the typed bullet of a Word list item, while it is read
        self.pending_level = 0  # a Word list item whose <li> waits for its marker
        self.lists: list[list] = []  # open lists: [kind, level]

    # --- Word lists ----------------------------------------------------------------------------------------
    def _close_lists(self, down_to: int = 0) -> None:
        while self.lists and self.lists[-1][1] > down_to:
            kind, _ = self.lists.pop()
            self.out.append(f"</li></{kind}>")

    def _open_item(self) -> None:
        level, self.pending_level = self.pending_level, 0
        kind = "ol" if ORDERED_MARKER.match("".join(self.marker or [])) else "ul"
        self.marker = None
        self._close_lists(level)
        if self.lists and self.lists[-1][1] == level:
            if self.lists[-1][0] == kind:
                self.out.append("</li><li>")
                return
            self._close_lists(level - 1)
        self.lists.append([kind, level])
        self.out.append(f"<{kind}><li>")

    # --- parser callbacks ----------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs_list) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if self.skip:
            if tag not in VOID:
                self.skip += 1
            return
        style = _style(attrs)
        if tag in DROP_WITH_CONTENT or (tag == "span" and style.get("mso-list") == "ignore"):
            if tag not in VOID:
                self.skip = 1
                if tag == "span" and self.pending_level:
                    self.marker = []
            return
        if self.pending_level:
            self._open_item()
        if tag == "p" and (level := re.search(r"level(\d+)", style.get("mso-list", ""))):
            self.pending_level = int(level.group(1))
            self.closers.append((tag, ""))  # the <li> stays open until the next item or the list's end
            return
        if self.lists and tag in BLOCKS:
            self._close_lists()
        if tag == "b" and (
            attrs.get("id", "").startswith("docs-internal-guid") or style.get("font-weight") == "normal"
        ):
            self.closers.append((tag, ""))  # Google Docs' wrapper around the whole paste: not bold
            return
        if tag == "span" or tag.startswith(("o:", "w:", "v:")):
            marks = _marks(style) if tag == "span" else []
            self.out.append("".join(f"<{m}>" for m in marks))
            self.closers.append((tag, "".join(f"</{m}>" for m in reversed(marks))))
            return
        tag = HEADING_LEVELS.get(tag, tag)
        kept = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items() if k not in ("style", "class"))
        self.out.append(f"<{tag}{kept}>")
        if tag not in VOID:
            self.closers.append((tag, f"</{tag}>"))

    def handle_startendtag(self, tag, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= 1
            if not self.skip and self.marker is not None:
                self._open_item()
            return
        tag_seen = HEADING_LEVELS.get(tag, tag)
        for index in range(len(self.closers) - 1, -1, -1):
            opened, closer = self.closers[index]
            if HEADING_LEVELS.get(opened, opened) == tag_seen or opened == tag:
                for _, inner in reversed(self.closers[index + 1 :]):
                    self.out.append(inner)
                del self.closers[index:]
                if self.pending_level:
                    self._open_item()  # an item with no marker span
                if closer and self.lists and opened in BLOCKS:
                    self._close_lists()  # a Word list ends with the block (a WordSection div) that holds it
                self.out.append(closer)
                return
        # a stray end tag: nothing was opened for it, so nothing to close

    def handle_data(self, data: str) -> None:
        if self.skip:
            if self.marker is not None:
                self.marker.append(data)
            return
        if self.pending_level and data.strip():
            self._open_item()
        if self.lists and not self.pending_level and data.strip() and not self.closers:
            self._close_lists()
        self.out.append(escape(data, quote=False))

    def finish(self) -> str:
        self.close()
        if self.pending_level:
            self._open_item()
        self._close_lists()
        self.out.extend(closer for _, closer in reversed(self.closers))
        return "".join(self.out)


def pasted_clean(html: str) -> str:
    """Office and Google Docs markup turned into plain semantic HTML (not yet sanitised). HTML that shows no sign
    of either is returned unchanged."""
    if not html or not LOOKS_PASTED.search(html):
        return html
    cleaner = _Cleaner()
    cleaner.feed(html)
    return cleaner.finish()
