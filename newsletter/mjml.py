"""The one adapter around the MJML compiler: mrml (the Rust port of MJML) in-process.

Why mrml: it compiles a realistic issue in a few milliseconds inside the worker (no node process to keep alive),
inlines `mj-style inline="inline"`, and its output matched the official `mjml` in headless Chromium. Its weakness
is diagnostics: a parse error carries no position and an unknown `<mj-…>` tag passes through silently. So before
compiling, `compile_mjml` walks the MJML elements itself and reports misspelt, unclosed and mismatched elements
with their line, which is what an editor (or a template author) needs to fix them. Swapping the compiler means
changing `_compile` only.
"""

from dataclasses import dataclass
from html.parser import HTMLParser

import mrml

# Every element of MJML 4/5 (https://documentation.mjml.io/).
MJML_ELEMENTS = frozenset({
    "mjml", "mj-head", "mj-body", "mj-attributes", "mj-all", "mj-class", "mj-breakpoint", "mj-font",
    "mj-html-attributes", "mj-html-attribute", "mj-selector", "mj-preview", "mj-style", "mj-title", "mj-raw",
    "mj-include", "mj-accordion", "mj-accordion-element", "mj-accordion-title", "mj-accordion-text", "mj-button",
    "mj-carousel", "mj-carousel-image", "mj-column", "mj-divider", "mj-group", "mj-hero", "mj-image", "mj-navbar",
    "mj-navbar-link", "mj-section", "mj-social", "mj-social-element", "mj-spacer", "mj-table", "mj-text",
    "mj-wrapper",
})  # fmt: skip
# Elements whose content is raw HTML/CSS, not MJML: tags inside them are not checked.
RAW_ELEMENTS = frozenset({"mj-text", "mj-raw", "mj-style", "mj-button", "mj-table", "mj-navbar-link"})


class MjmlError(Exception):
    """The MJML could not be compiled. `message` says why; `line` (1-based, in the MJML source) says where, when
    known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Element:
    name: str
    line: int


class _StructureChecker(HTMLParser):
    """Checks nesting of the `mj-*` elements; HTML inside mj-text and friends is the compiler's business."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[Element] = []
        self.error: MjmlError | None = None

    def _fail(self, message: str, line: int) -> None:
        if self.error is None:
            self.error = MjmlError(message, line)

    def _raw_depth(self) -> bool:
        return any(e.name in RAW_ELEMENTS for e in self.stack)

    def handle_starttag(self, tag: str, attrs) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")) or self._raw_depth():
            return
        line = self.getpos()[0]
        if tag not in MJML_ELEMENTS:
            self._fail(f"<{tag}> is not an MJML element", line)
        self.stack.append(Element(tag, line))

    def handle_startendtag(self, tag: str, attrs) -> None:
        if (tag.startswith("mj-")) and not self._raw_depth() and tag not in MJML_ELEMENTS:
            self._fail(f"<{tag}> is not an MJML element", self.getpos()[0])

    def handle_endtag(self, tag: str) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            return
        line = self.getpos()[0]
        if self._raw_depth() and (not self.stack or self.stack[-1].name != tag):
            if tag in RAW_ELEMENTS or not any(e.name == tag for e in self.stack):
                # e.g. </mj-column> while an <mj-text> is still open
                opened = next(e for e in reversed(self.stack) if e.name in RAW_ELEMENTS)
                self._fail(f"</{tag}> closes <{opened.name}> opened at line {opened.line}", line)
            return
        if not self.stack:
            self._fail(f"</{tag}> has no matching opening tag", line)
        elif self.stack[-1].name != tag:
            opened = self.stack[-1]
            self._fail(f"</{tag}> found but <{opened.name}> (opened at line {opened.line}) is not closed", line)
        else:
            self.stack.pop()


def check_structure(source: str) -> None:
    """Raise MjmlError with a line number for unknown, unclosed or mismatched MJML elements."""
    checker = _StructureChecker()
    checker.feed(source)
    checker.close()
    if checker.error:
        raise checker.error
    if checker.stack:
        opened = checker.stack[-1]
        raise MjmlError(f"<{opened.name}> is never closed", opened.line)


def _compile(source: str) -> str:
    try:
        return mrml.to_html(source).content
    except Exception as exc:  # mrml raises OSError/ValueError variants carrying the parser's message
        raise MjmlError(str(exc) or exc.__class__.__name__) from exc


def compile_mjml(source: str) -> str:
    """Compile an MJML document to responsive HTML. Raises MjmlError (with the line when it can be found)."""
    check_structure(source)
    return _compile(source)
