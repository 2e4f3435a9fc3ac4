"""The personal values of an email, as markers in the frozen render, and their substitution.

An issue is rendered once with these markers in place; per recipient only the markers change. Markers are plain
ASCII with no characters that HTML, quoted-printable or base64 would alter, so they survive any body encoding
that keeps lines intact (the sender uses 8-bit bodies). Each value is escaped for its context once per recipient.

Content can never produce a marker: the layout is filled with one-render markers carrying a random nonce
(render_markers), then `seal` breaks every marker-shaped text that came from content (a headline, an article body,
a feed item, a sponsor line) and only then turns the nonce markers into the stored ones. So a feed item that
writes %%MH_UNSUBSCRIBE_URL%% into an image URL gets that literal text, never the reader's link.
"""

import secrets
from dataclasses import dataclass
from html import escape

from django.utils import translation

UNSUBSCRIBE_URL = "%%MH_UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%MH_PREFERENCES_URL%%"
NAME = "%%MH_NAME%%"
# The per-recipient half of every tracked link and of the open pixel (engagement/tokens.py): base64url, no escaping.
TRACK = "%%MH_TRACK%%"

MARKERS = (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME, TRACK)
_MARKER_START = "%%MH_"
# What marker-shaped text from content becomes: the same characters to a reader, no longer a marker.
_BROKEN = {True: "&#37;%MH_", False: "%\u2060%MH_"}  # html: an entity; text: a word joiner between the %s


def render_markers() -> dict[str, str]:
    """{stored marker: this render's marker}. The render's markers carry 128 random bits no content can guess, and
    do not contain _MARKER_START."""
    nonce = secrets.token_hex(16)
    return {marker: marker.replace(_MARKER_START, f"%%MH{nonce}_", 1) for marker in MARKERS}


def seal(rendered: str, markers: dict[str, str], *, html: bool) -> str:
    """A render filled with `markers` (render_markers) as stored: every marker-shaped text (from content) broken,
    NUL bytes dropped (the sender's slots use them), then this render's markers turned into the stored ones."""
    rendered = rendered.replace("\x00", "").replace(_MARKER_START, _BROKEN[html])
    for marker, nonced in markers.items():
        rendered = rendered.replace(nonced, marker)
    return rendered


# What the greeting says for a reader who gave no name ("Hi there,"), for every door: send, preview, archive.
NAME_FALLBACK = "there"


@dataclass(frozen=True)
class PersonalValues:
    unsubscribe_url: str
    preferences_url: str
    name: str = ""
    # The greeting's word for a reader without a name, in the newsletter's language (name_fallback).
    fallback_name: str = NAME_FALLBACK
    track: str = ""

    def for_html(self) -> dict[str, str]:
        return {
            UNSUBSCRIBE_URL: escape(self.unsubscribe_url, quote=True),
            PREFERENCES_URL: escape(self.preferences_url, quote=True),
            NAME: escape(self.name or self.fallback_name, quote=True),
            TRACK: self.track,
        }

    def for_text(self) -> dict[str, str]:
        return {
            UNSUBSCRIBE_URL: self.unsubscribe_url,
            PREFERENCES_URL: self.preferences_url,
            NAME: self.name or self.fallback_name,
            TRACK: self.track,
        }


def substitute(template: str, values: dict[str, str]) -> str:
    """Replace every marker in `template` with its (already escaped) value."""
    for marker, value in values.items():
        template = template.replace(marker, value)
    return template


def name_fallback(language: str) -> str:
    """NAME_FALLBACK in `language` (a newsletter's): what its greeting calls a reader who gave no name."""
    with translation.override(language):
        # Translators: the greeting of an issue to a reader who gave no name, as in "Hi there,".
        return translation.gettext("there")
