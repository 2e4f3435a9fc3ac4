"""The personal values of an email, as markers in the frozen render, and their substitution.

An issue is rendered once with these markers in place; per recipient only the markers change. Markers are plain
ASCII with no characters that HTML, quoted-printable or base64 would alter, so they survive any body encoding
that keeps lines intact (the sender uses 8-bit bodies). Each value is escaped for its context once per recipient.
"""

from dataclasses import dataclass
from html import escape

from django.utils import translation

UNSUBSCRIBE_URL = "%%MH_UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%MH_PREFERENCES_URL%%"
NAME = "%%MH_NAME%%"
# The per-recipient half of every tracked link and of the open pixel (engagement/tokens.py): base64url, no escaping.
TRACK = "%%MH_TRACK%%"

MARKERS = (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME, TRACK)

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
